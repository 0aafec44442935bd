"""Request bodies of the retraining routes (``/api/v1/retraining/...``).

Answers are the records themselves (:mod:`driftline.api.codec`), and a policy in its
YAML structure (``RetrainPolicy.to_dict``). The server checks every field again with
the policy parser's rules, so a bad field is a 400 naming it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

from driftline.api.text import Text, no_nul

__all__ = ["ApplyPolicyBody", "RunBody"]

_Object = Annotated[dict[str, Any], AfterValidator(no_nul)]
_Source = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(no_nul)]


class ApplyPolicyBody(BaseModel):
    """A policy as ``retrain.yaml`` text (``text``, with the file's name in ``source`` for
    error messages) or as its structure (``policy``): exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    text: Text | None = None
    source: _Source = "retrain.yaml"
    policy: _Object | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ApplyPolicyBody:
        if (self.text is None) == (self.policy is None):
            raise ValueError("give the policy as 'text' (YAML) or as 'policy' (an object)")
        return self


class RunBody(BaseModel):
    """A manual trigger's payload: values of the pipeline's ``{trigger.KEY}`` placeholders."""

    model_config = ConfigDict(extra="forbid")

    payload: _Object = {}
