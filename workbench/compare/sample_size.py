"""How many paired rows a comparison would need to detect a given difference."""

from __future__ import annotations

from workbench import stats
from workbench.compare.result import ALPHA
from workbench.errors import WorkbenchError


def sample_size_advice(entry: dict, min_diff: float, alpha: float = ALPHA, power: float = 0.8) -> dict:
    """How many paired rows would detect `min_diff` (a proportion for pass rates) with this spread.

    Uses the observed sd of per-row differences (stats.required_sample_size). When the
    variants never differed on a row there is no spread to go on; for pass rates the
    conservative independent-outcomes formula is used instead.
    """
    if not min_diff:
        raise WorkbenchError("Choose a non-zero difference to detect.")
    sd, n, unit = entry.get("sd_diff"), entry.get("n", 0), " pp" if entry.get("kind") == "pass" else ""
    shown = f"{min_diff * 100:g}{unit}" if unit else f"{min_diff:g}"
    if sd is None:
        return {"rows": None, "message": "Needs at least 2 paired rows to estimate how much rows vary."}
    if sd == 0:
        if entry.get("kind") == "pass" and entry.get("mean_a") is not None:
            p_a = min(max(entry["mean_a"], 0.0), 1.0)
            diff = min_diff if 0 <= p_a + min_diff <= 1 else -min_diff
            if not 0 <= p_a + diff <= 1:
                return {"rows": None, "message": f"A pass rate of {p_a:.0%} cannot move by {shown}."}
            rows = stats.required_sample_size_proportions(p_a, diff, alpha, power)
            return {
                "rows": rows,
                "message": f"The variants never differed on a row, so there is no observed "
                f"spread; assuming independent outcomes (conservative), about {rows} "
                f"rows would detect {shown} with {power:.0%} power. This comparison "
                f"has {n}.",
            }
        return {"rows": None, "message": "The variants never differed on a row: there is no spread to plan from."}
    rows = stats.required_sample_size(sd, min_diff, alpha, power)
    return {
        "rows": rows,
        "message": f"About {rows} paired rows would detect a difference of {shown} with "
        f"{power:.0%} power at alpha {alpha:g} (observed sd of row differences "
        f"{sd:.3g}). This comparison has {n}.",
    }
