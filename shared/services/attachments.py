"""Files that go with an invoice or credit note: stored in the documents bucket beside its PDF,
listed on the document, e-mailed with it, each one's SHA-256 in the audit trail."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from shared.billing.errors import ConflictError, NotFoundError, ValidationError
from shared.billing.models import Attachment, Invoice
from shared.services.context import Actor, Ports
from shared.services.ids import new_id
from shared.services.requests.invoices import AttachmentCreate

MAX_BYTES = 5 * 1024 * 1024  # an API Gateway payload is at most 10 MB, base64 adds a third
MAX_PER_DOCUMENT = 10
MAX_TOTAL_BYTES = 6 * 1024 * 1024  # they travel with the PDF in one SES message (10 MB at most, base64 inside)
# content type -> how its bytes begin (None: text, checked as UTF-8)
SIGNATURES: dict[str, tuple[bytes, ...] | None] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "text/csv": None,
    "text/plain": None,
}
SAFE_NAME = re.compile(r"^[\w .()+-]{1,200}$")


def add_attachment(ports: Ports, actor: Actor, document_id: str, body: AttachmentCreate) -> Attachment:
    actor.require("invoices:write")
    document = _document(ports, document_id)
    if document.status in ("void", "deleted"):
        raise ConflictError(f"{document.kind.replace('_', ' ')} {document.id} is {document.status}",
                            code=f"invoice_{document.status}")
    if len(document.attachments) >= MAX_PER_DOCUMENT:
        raise ConflictError(f"a document takes at most {MAX_PER_DOCUMENT} attachments", code="too_many_attachments")
    if not SAFE_NAME.match(body.filename) or body.filename.strip(" .") != body.filename:
        raise ValidationError("letters, digits, spaces and . ( ) + - _ only, no path", param="filename")
    if body.content_type not in SIGNATURES:
        raise ValidationError(f"one of {', '.join(SIGNATURES)}", param="content_type")
    content = decoded_upload(body.content_base64, MAX_BYTES, "an attachment")
    _check_content(content, body.content_type)
    if sum(a.size for a in document.attachments) + len(content) > MAX_TOTAL_BYTES:
        raise ConflictError(f"a document's attachments add up to at most {MAX_TOTAL_BYTES // 1024 // 1024} MB: "
                            "they are e-mailed together", code="attachments_too_large")
    attachment_id = new_id("att")
    attachment = Attachment(
        id=attachment_id, filename=body.filename, content_type=body.content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), key=f"attachments/{document.id}/{attachment_id}/{body.filename}",
        added_at=ports.clock.now(), added_by=actor.name)
    ports.documents.put(attachment.key, content, attachment.content_type)
    document.attachments.append(attachment)
    try:
        ports.repo.update_invoice(document, [ports.audit(actor, f"{document.kind}.attachment_added", document.kind,
                                                         document.id, after=attachment)])
    except ConflictError:
        raise ConflictError(f"{document.id} changed meanwhile; retry", code="concurrent_change") from None
    return attachment


def decoded_upload(content_base64: str, max_bytes: int, what: str, param: str = "content_base64") -> bytes:
    """The bytes of an uploaded file (base64 in JSON), 1 byte to `max_bytes`; a 422 naming `param` otherwise."""
    try:
        content = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("not valid base64", param=param) from None
    if not content or len(content) > max_bytes:
        limit = f"{max_bytes // 1024 // 1024} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes // 1024} KB"
        raise ValidationError(f"{len(content)} bytes: {what} has 1 byte to {limit}", param=param)
    return content


def read_attachment(ports: Ports, document_id: str, attachment_id: str) -> tuple[Attachment, bytes]:
    document = _document(ports, document_id)
    for attachment in document.attachments:
        if attachment.id == attachment_id:
            return attachment, ports.documents.get(attachment.key)
    raise NotFoundError(f"no attachment '{attachment_id}' on {document.id}", param="attachment_id")


def attachment_files(ports: Ports, document: Invoice) -> list[tuple[str, bytes, str]]:
    """(filename, bytes, content type) of every attachment, for the e-mail."""
    return [(a.filename, ports.documents.get(a.key), a.content_type) for a in document.attachments]


def _document(ports: Ports, document_id: str) -> Invoice:
    document = ports.repo.get_invoice(document_id)
    if document is None:
        raise NotFoundError(f"no invoice or credit note '{document_id}'", param="id")
    return document


def _check_content(content: bytes, content_type: str) -> None:
    signatures = SIGNATURES[content_type]
    if signatures is None:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{content_type} must be UTF-8 text", param="content_base64") from None
    elif not content.startswith(signatures):
        raise ValidationError(f"the content is not {content_type}", param="content_type")
