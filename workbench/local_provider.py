"""litellm custom provider `local/...` backed by the embedded model (workbench.local_model)."""

from __future__ import annotations

import asyncio

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import ModelResponse, Usage

from workbench import local_model

SUPPORTED = {"smollm2"}


class LocalProvider(CustomLLM):
    def _generate(self, model: str, messages: list, optional_params: dict, model_response: ModelResponse):
        name = model.split("/", 1)[-1]
        if name not in SUPPORTED:
            # A status code keeps litellm from reporting this as a (retryable) connection error.
            raise CustomLLMError(
                status_code=404,
                message=f"Unknown local model {model!r}: available: local/" + ", local/".join(sorted(SUPPORTED)),
            )
        result = local_model.generate(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            max_tokens=optional_params.get("max_tokens") or 256,
            temperature=optional_params.get("temperature") or 0.0,
            top_p=optional_params.get("top_p") or 1.0,
            stop=optional_params.get("stop"),
            seed=optional_params.get("seed"),
            top_logprobs=int(optional_params.get("top_logprobs") or (5 if optional_params.get("logprobs") else 0)),
        )
        model_response.choices[0].message.content = result["text"]
        model_response.choices[0].finish_reason = result["finish_reason"]
        model_response.model = local_model.MODEL_ID
        if result["logprobs"] is not None:
            model_response.choices[0].logprobs = {"content": result["logprobs"]}
        model_response.usage = Usage(
            prompt_tokens=result["prompt_tokens"],
            completion_tokens=result["completion_tokens"],
            total_tokens=result["prompt_tokens"] + result["completion_tokens"],
        )
        return model_response

    def completion(
        self,
        model,
        messages,
        api_base,
        custom_prompt_dict,
        model_response,
        print_verbose,
        encoding,
        api_key,
        logging_obj,
        optional_params,
        *args,
        **kwargs,
    ):
        return self._generate(model, messages, optional_params, model_response)

    async def acompletion(
        self,
        model,
        messages,
        api_base,
        custom_prompt_dict,
        model_response,
        print_verbose,
        encoding,
        api_key,
        logging_obj,
        optional_params,
        *args,
        **kwargs,
    ):
        # Generation is CPU-bound: run it off the event loop so other (hosted) calls proceed.
        return await asyncio.to_thread(self._generate, model, messages, optional_params, model_response)
