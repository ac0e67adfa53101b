"""Every status an operation can answer, declared in the OpenAPI document with the problem schema.

Handlers declare their success answers; the errors are the same few everywhere (README, "API overview"), so
they are added to every operation here, by what the operation does, once the document is built.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

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
        "type": Schema(type=OpenAPIType.STRING, description="a URL naming the problem, ending in its code"),
        "title": Schema(type=OpenAPIType.STRING, description="the status in words"),
        "status": Schema(type=OpenAPIType.INTEGER, description="the HTTP status again"),
        "detail": Schema(
            type=OpenAPIType.STRING,
            description="a sentence the operator can act on; in Vietnamese when asked (Accept-Language: vi)",
        ),
        "code": Schema(type=OpenAPIType.STRING, description="a stable machine-readable word"),
        "instance": Schema(type=OpenAPIType.STRING, description="the path of the request"),
        "detail_en": Schema(type=OpenAPIType.STRING, description="the English sentence, when detail is in Vietnamese"),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            description="invalid_fields: each field and what is wrong with it; invalid_rows: each bad line; "
            "catalogue_invalid: each bad cell by row and column",
            items=Schema(
                one_of=[
                    Schema(
                        type=OpenAPIType.OBJECT,
                        required=["field", "message"],
                        properties={
                            "field": Schema(type=OpenAPIType.STRING),
                            "message": Schema(type=OpenAPIType.STRING),
                        },
                    ),
                    Schema(type=OpenAPIType.STRING),
                    Schema(
                        type=OpenAPIType.OBJECT,
                        required=["row", "column", "detail"],
                        properties={
                            "row": Schema(type=OpenAPIType.INTEGER),
                            "column": Schema(type=OpenAPIType.STRING),
                            "detail": Schema(type=OpenAPIType.STRING),
                        },
                    ),
                ]
            ),
        ),
        "problems": Schema(
            type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING), description="catalogue_invalid: each one"
        ),
        "known": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.STRING),
            description="unknown_part_code: the procedure's codes of that kind",
        ),
        "missing": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.INTEGER),
            description="parts_missing: the part numbers still to send",
        ),
        "locked_until": Schema(
            type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME, description="account_locked: until when"
        ),
        "received_sha256": Schema(
            type=OpenAPIType.STRING, description="checksum_mismatch: the SHA-256 of what arrived"
        ),
    },
    description="RFC 9457 problem details, as every error of the warehouse is answered",
)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_TEXT = Schema(type=OpenAPIType.STRING)
_BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
# Operations that answer in more than one format, chosen by Accept (or ?format=): the success answer's
# other media types, beside the JSON the handler declares.
ALTERNATIVES: dict[str, tuple[str, dict[str, Schema]]] = {
    "provision_accounts": ("201", {"text/csv": _TEXT}),
    "progress_report": ("200", {"text/csv": _TEXT, XLSX: _BINARY, "image/png": _BINARY}),
    "list_procedures": ("200", {"text/csv": _TEXT, XLSX: _BINARY}),
    "verify_result": ("200", {"text/html": _TEXT}),
    "verify_copy": ("200", {"text/html": _TEXT}),
}
# Errors some operations answer as a page when a page was asked for (a citizen's phone), else a problem.
_PAGE_ERRORS = {"verify_result": ("404",), "verify_copy": ("404",)}
# The JSON answer of those whose handler returns a Response of any shape.
_JSON_ANSWERS = {
    "list_procedures": Schema(
        type=OpenAPIType.OBJECT,
        description="items (each procedure's newest version, as GET /api/v1/procedures/{code} gives them) "
        "and next_cursor",
    ),
    "verify_result": Schema(
        type=OpenAPIType.OBJECT,
        description="whether the result is genuine and valid, which unit issued it, and what was compared",
    ),
}
_JSON_ANSWERS["verify_copy"] = _JSON_ANSWERS["verify_result"]
_DATE = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE)
_RETURN = Schema(
    type=OpenAPIType.OBJECT,
    required=["dossier_code", "procedure_code", "unit_code", "received_on", "returned_on", "subject"],
    properties={
        "dossier_code": Schema(type=OpenAPIType.STRING, description="<receiving unit code>-YYMMDD-XXXX"),
        "procedure_code": Schema(type=OpenAPIType.STRING, description="mã TTHC, e.g. 1.001612"),
        "unit_code": Schema(type=OpenAPIType.STRING, description="the receiving unit"),
        "received_on": _DATE,
        "returned_on": _DATE,
        "title": Schema(type=OpenAPIType.STRING),
        "subject": Schema(
            type=OpenAPIType.OBJECT,
            required=["name", "id_kind", "id_number"],
            properties={"name": _TEXT, "id_kind": _TEXT, "id_number": _TEXT},
        ),
        "result": Schema(
            type=OpenAPIType.OBJECT,
            required=["number", "type_code"],
            properties={
                "number": _TEXT,
                "type_code": Schema(type=OpenAPIType.STRING, description="a result type of the procedure, e.g. KQ1"),
                "issuer": _TEXT,
                "issued_on": _DATE,
                "valid_until": _DATE,
                "file": Schema(
                    type=OpenAPIType.OBJECT,
                    required=["filename", "size", "sha256"],
                    properties={
                        "filename": _TEXT,
                        "size": Schema(type=OpenAPIType.INTEGER),
                        "sha256": _TEXT,
                        "mode": Schema(type=OpenAPIType.STRING, enum=["parts", "direct"]),
                    },
                    description="the electronic result the desk attached: an upload session is opened for it",
                ),
            },
        ),
    },
)
# Operations that read their body themselves (a batch, a spreadsheet): what the body may be.
REQUEST_BODIES: dict[str, dict[str, Schema]] = {
    "push_returns": {
        "application/json": Schema(type=OpenAPIType.ARRAY, items=_RETURN, description="a batch of returns"),
        "application/x-ndjson": Schema(type=OpenAPIType.STRING, description="one return (JSON object) per line"),
    },
    "import_procedures": {"text/csv": _TEXT, XLSX: _BINARY},
}
_REPORT_JSON = Schema(
    type=OpenAPIType.OBJECT,
    description="year, level, parent, parent_name, units (one row per unit with its weekly trend), levels",
)


def declare_alternatives(openapi: OpenAPI) -> None:
    for item in (openapi.paths or {}).values():
        for method in ("get", "post"):
            operation: Operation | None = getattr(item, method, None)
            if operation is None or operation.operation_id not in ALTERNATIVES:
                continue
            status, media = ALTERNATIVES[operation.operation_id]
            responses = operation.responses if operation.responses is not None else {}
            answer = responses.get(status)
            if not isinstance(answer, OpenAPIResponse):
                answer = OpenAPIResponse(description="The answer, in the format asked for")
            content = dict(answer.content or {})
            json = content.get("application/json")
            if json is None or json.schema in (None, Schema()):
                content["application/json"] = OpenAPIMediaType(
                    schema=_JSON_ANSWERS.get(operation.operation_id, _REPORT_JSON)
                )
            for media_type, schema in media.items():
                content[media_type] = OpenAPIMediaType(schema=schema)
            answer.content = content
            responses[status] = answer
            operation.responses = responses


def declare_bodies(openapi: OpenAPI) -> None:
    for item in (openapi.paths or {}).values():
        operation: Operation | None = getattr(item, "post", None)
        if operation is not None and operation.operation_id in REQUEST_BODIES:
            operation.request_body = RequestBody(
                required=True,
                content={m: OpenAPIMediaType(schema=s) for m, s in REQUEST_BODIES[operation.operation_id].items()},
            )


def declare_problems(openapi: OpenAPI) -> OpenAPI:
    """Declare the problem answers each operation can give, and the other formats some answer in."""
    declare_alternatives(openapi)
    declare_bodies(openapi)
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
                content = {PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))}
                if status in _PAGE_ERRORS.get(operation.operation_id or "", ()):
                    content["text/html"] = OpenAPIMediaType(schema=_TEXT)
                responses[status] = OpenAPIResponse(
                    description=_SENTENCES.get(status, "An error; see the problem's detail."), content=content
                )
            operation.responses = responses
    return openapi
