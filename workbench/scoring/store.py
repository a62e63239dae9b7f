"""Saved scorers: named, versioned configs (a rubric edited on the Scorers page is a new version).

Runs reference a saved scorer as `{scorer: "name"}` (latest) or `{scorer: "name@2"}`;
inline configs in an eval file are recorded as versions too, so every score row names
the exact scorer version that produced it.
"""

from __future__ import annotations

from storage import scorers as repo
from storage.tables import Scorer
from workbench import secrets
from workbench.errors import NotFound, WorkbenchError
from workbench.scoring import scorer_name, validate_scorer_config


def save(name: str, config: dict, note: str = "") -> tuple[Scorer, bool]:
    """Append a version unless the config equals the latest one; refuses invalid configs."""
    name = (name or "").strip()
    if not name or "@" in name:
        raise WorkbenchError("Give the scorer a name (without '@').")
    config = secrets.strip_keys({**config, "name": name})  # a literal key never reaches the table
    problems = validate_scorer_config(config)
    if problems:
        raise WorkbenchError("; ".join(problems))
    return repo.save_version(name, config["type"], config, note)


def list_scorers() -> list[dict]:
    return [{"name": r.name, "type": r.type, "latest": r.version, "note": r.note} for r in repo.latest_each()]


def versions(name: str) -> list[Scorer]:
    found = repo.versions(name)
    if not found:
        raise NotFound(f"No saved scorer named {name!r}.")
    return found


def resolve(ref: str) -> Scorer:
    name, _, number = ref.partition("@")
    found = versions(name.strip())
    if not number.strip():
        return found[-1]
    for row in found:
        if str(row.version) == number.strip():
            return row
    raise NotFound(f"Scorer {name!r} has no version {number}.")


def expand(configs: list) -> list[dict]:
    """Replace `{scorer: ref}` entries by the saved config (keeping any name override)."""
    out = []
    for config in configs or []:
        if isinstance(config, dict) and "scorer" in config:
            saved = resolve(str(config["scorer"]))
            out.append({**saved.config, **{k: v for k, v in config.items() if k == "name"}})
        else:
            out.append(config)
    return out


def version_ids(configs: list[dict]) -> list[int]:
    """The scorer version for each config, recording inline configs as versions when new."""
    ids = [save(scorer_name(c), {k: v for k, v in c.items() if k != "name"})[0].id for c in configs]
    return [i for i in ids if i is not None]
