"""Path parameters, declared once with their rule, so Litestar checks them before the
handler runs (422 in the error shape, naming the parameter) and OpenAPI documents their
pattern and length (``tether.limits``)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter, ParameterKwarg

from tether.limits import ID_REGEX, ID_RULE, MAX_ID_LENGTH


def _id(what: str) -> ParameterKwarg:
    kwarg: ParameterKwarg = Parameter(
        pattern=ID_REGEX,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description=f"{what}: {ID_RULE}",
    )
    return kwarg


MachineId = Annotated[str, _id("the machine's id")]
JobId = Annotated[str, _id("the job's id")]
RunId = Annotated[str, _id("the run's id")]
ApprovalKey = Annotated[str, _id("the approval's key")]
SignalName = Annotated[str, _id("the signal's name")]
KeyName = Annotated[str, _id("the API key's name")]
FunctionName = Annotated[str, _id("the function's name")]
# Any id passes the door; a name no schedule can have (an '@', over 150) is then not found.
ScheduleName = Annotated[str, _id("the schedule's name")]
WebhookId = Annotated[str, _id("the webhook's id")]
