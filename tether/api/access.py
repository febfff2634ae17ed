"""Who may call what: THE table of routes and the permission each needs.

Every route handler of the API has an ``operation_id``; ``ROUTE_ACCESS`` maps each to one
permission, and ``ROLE_PERMISSIONS`` says which roles hold it. A route missing from the
table is refused to everyone (tests check that every route is in it, and that the table
in docs/security.md is the one ``roles_table()`` prints).
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PUBLIC = "public"  # no key needed (liveness probes)
    SELF = "self"  # any valid key: ask what the key itself is (name, role, namespace)
    READ = "read"  # look at jobs, runs, machines, functions, metrics
    SUBMIT = "submit"  # submit and cancel jobs, start, cancel and retry runs
    DECIDE = "decide"  # decide approvals, send signals
    MACHINE = "machine"  # act as a machine: heartbeat, poll, results, activations
    ADMIN = "admin"  # manage API keys and webhooks


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "app": frozenset({Permission.PUBLIC, Permission.SELF, Permission.READ, Permission.SUBMIT}),
    "approver": frozenset({Permission.PUBLIC, Permission.SELF, Permission.READ, Permission.DECIDE}),
    "viewer": frozenset({Permission.PUBLIC, Permission.SELF, Permission.READ}),
    "machine": frozenset({Permission.PUBLIC, Permission.SELF, Permission.MACHINE}),
}

# operation_id -> the permission its route needs.
ROUTE_ACCESS: dict[str, Permission] = {
    # operations
    "health": Permission.PUBLIC,
    "metrics": Permission.READ,
    "streamEvents": Permission.READ,
    # the calling key's own name, role and permissions (the dashboard shows what it may do)
    "whoAmI": Permission.SELF,
    # The dashboard's static files hold no data: every call they make carries a key.
    "dashboard": Permission.PUBLIC,
    "dashboardAsset": Permission.PUBLIC,
    # machines (each also bound to the key that first acted as that machine id)
    "heartbeat": Permission.MACHINE,
    "poll": Permission.MACHINE,
    "reportResults": Permission.MACHINE,
    "deregister": Permission.MACHINE,
    "beginActivation": Permission.MACHINE,
    "recordStep": Permission.MACHINE,
    "completeRun": Permission.MACHINE,
    "failRun": Permission.MACHINE,
    "suspendRun": Permission.MACHINE,
    "continueRunAsNew": Permission.MACHINE,
    "shipLogs": Permission.MACHINE,  # only lines of jobs the machine holds or last held
    "listMachines": Permission.READ,
    # jobs
    "createJob": Permission.SUBMIT,
    "createJobs": Permission.SUBMIT,
    "cancelJob": Permission.SUBMIT,
    "getJob": Permission.READ,
    "getJobLogs": Permission.READ,
    "getJobTimeline": Permission.READ,
    "listJobs": Permission.READ,
    "listFunctions": Permission.READ,
    # runs
    "startRun": Permission.SUBMIT,
    "cancelRun": Permission.SUBMIT,
    "retryRun": Permission.SUBMIT,
    "getRun": Permission.READ,
    "listRuns": Permission.READ,
    "getRunTimeline": Permission.READ,
    "getRunLogs": Permission.READ,
    "decideApproval": Permission.DECIDE,
    "sendSignal": Permission.DECIDE,
    # schedules
    "putSchedule": Permission.SUBMIT,
    "pauseSchedule": Permission.SUBMIT,
    "resumeSchedule": Permission.SUBMIT,
    "triggerSchedule": Permission.SUBMIT,
    "deleteSchedule": Permission.SUBMIT,
    "listSchedules": Permission.READ,
    "getSchedule": Permission.READ,
    "putMachineSchedules": Permission.MACHINE,  # a worker's cron_jobs (its own functions)
    # limits of a function (docs/queue-features.md): they bind every machine's claims
    "putLimits": Permission.ADMIN,
    "deleteLimits": Permission.ADMIN,
    "getLimits": Permission.READ,
    # keys
    "createKey": Permission.ADMIN,
    "listKeys": Permission.ADMIN,
    "revokeKey": Permission.ADMIN,
    # webhooks: admins only, since a webhook makes the orchestrator POST the namespace's
    # runs (results, approval data) to a URL of the caller's choosing
    "createWebhook": Permission.ADMIN,
    "listWebhooks": Permission.ADMIN,
    "getWebhook": Permission.ADMIN,
    "deleteWebhook": Permission.ADMIN,
    "listWebhookDeliveries": Permission.ADMIN,
}


def allowed_roles(permission: Permission) -> list[str]:
    return [role for role, perms in ROLE_PERMISSIONS.items() if permission in perms]


def roles_table(routes: list[tuple[str, str, str]]) -> str:
    """The Markdown table of docs/security.md: ``routes`` are (method, path, operation_id)."""
    lines = [
        "| method | path | permission | roles |",
        "|---|---|---|---|",
    ]
    for method, path, op in sorted(routes, key=lambda r: (r[1], r[0])):
        permission = ROUTE_ACCESS[op]
        roles = (
            "anyone" if permission is Permission.PUBLIC else ", ".join(allowed_roles(permission))
        )
        lines.append(f"| {method} | `{path}` | {permission.value} | {roles} |")
    return "\n".join(lines) + "\n"


def print_roles_table() -> None:
    """Print the table for docs/security.md from the app's OpenAPI document."""
    from tether.api.app import create_app

    schema = create_app().openapi_schema.to_schema()
    routes = [
        (method.upper(), path, op["operationId"])
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    print(roles_table(routes), end="")
