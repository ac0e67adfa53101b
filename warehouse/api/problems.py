"""Every status an operation can answer, declared in the OpenAPI document with the problem schema.

Handlers declare their success answers; the errors are the same few everywhere (README, "API overview"), so
they are added to every operation here, by what the operation does, once the document is built.
"""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from warehouse.errors import PROBLEM_JSON

_SENTENCES = {
    "400": "The request could not be read (bad JSON, a bad header, a malformed form).",
    "401": "Not signed in, or the credential is not valid any more.",
    "403": "The caller's role may not do this.",
    "404": "Nothing with that id in the units the caller may see.",
    "405": "The address does not take this method.",
    "408": "The upload stalled or arrived too slowly.",
    "409": "It conflicts with the record's state.",
    "413": "The body is larger than the limit.",
    "415": "The body is not of a type this address takes.",
    "422": "A field is missing or invalid.",
    "429": "A limit was reached; wait Retry-After seconds.",
    "503": "A backing service is not answering; try again after Retry-After seconds.",
}
_EVERY = ("400", "401", "403", "404", "405", "422", "429", "503")
_WRITES = ("409", "413", "415")
_UPLOADS = ("408",)
_UPLOAD_OPERATIONS = {"upload_file", "put_upload_part"}

PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "detail", "code"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "code": Schema(type=OpenAPIType.STRING, description="a stable machine-readable word"),
        "instance": Schema(type=OpenAPIType.STRING),
    },
    description="RFC 9457 problem details",
)


def declare_problems(openapi: OpenAPI) -> OpenAPI:
    """Declare the problem answers each operation can give."""
    assert openapi.components is not None
    schemas = openapi.components.schemas if isinstance(openapi.components.schemas, dict) else {}
    schemas["Problem"] = PROBLEM
    openapi.components.schemas = schemas
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None:
                continue
            statuses = list(_EVERY)
            if method != "get":
                statuses += _WRITES
            if operation.operation_id in _UPLOAD_OPERATIONS:
                statuses += _UPLOADS
            if path.startswith("/health"):
                statuses = ["503"]
            responses = operation.responses if operation.responses is not None else {}
            # Errors are always problem documents (the framework's own 400 says application/json).
            statuses += [status for status in responses if status[:1] in ("4", "5") and status not in statuses]
            for status in statuses:
                responses[status] = OpenAPIResponse(
                    description=_SENTENCES.get(status, "An error; see the problem's detail."),
                    content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
                )
            operation.responses = responses
    return openapi
