"""File uploads: the CSV itself (``text/csv``) or a browser form's file (``multipart/form-data``), nothing else.

Other content types are a 415. A browser form can only send ``text/plain``,
``application/x-www-form-urlencoded`` or ``multipart/form-data`` without a CORS preflight;
refusing the first two closes the way a foreign page's form posted an order file as
``text/plain`` (issue #11). Multipart forms remain possible from any page, so the
Origin check (``api.csrf``) is what stops a forged upload; this narrows what gets parsed.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

ACCEPTED = ("text/csv", "multipart/form-data")


async def csv_upload(request: Request, max_bytes: int, field: str = "file") -> bytes:
    """The uploaded CSV's bytes: the body of a ``text/csv`` request or the ``field`` file of a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ACCEPTED:
        raise HTTPException(status_code=415, detail=f"send the CSV file itself with Content-Type: text/csv, or as "
                                                    f"the '{field}' file of a multipart/form-data form (got "
                                                    f"{kind or 'no Content-Type'})")
    too_big = HTTPException(status_code=413, detail=f"the file is over {max_bytes // 2**20} MB: split it")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise too_big
    if kind == "text/csv":
        body = await request.body()
    else:
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get(field)
        if not isinstance(upload, UploadFile):
            raise HTTPException(status_code=422, detail=[{
                "type": "upload.missing", "loc": ["body", field],
                "msg": f"no file in the form field '{field}': send <input type=file name={field}>", "ctx": {}}])
        body = await upload.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise too_big
    return body
