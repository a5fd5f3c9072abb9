"""upload.saveFilePart / saveBigFilePart / getFile: enough of the file API for voice notes.

Why: Telethon uploads in parts keyed by a random file_id, then references the upload from
messages.sendMedia (with an md5 for small files), and downloads in aligned chunks until a short
chunk arrives. Parts are collected per auth key and assembled in send_media (api_messages).
"""

from __future__ import annotations

from telethon.tl import functions, types

from .rpc import Call, handler
from .state import RpcFailure

MAX_PART = 512 * 1024
MAX_DOWNLOAD_CHUNK = 1024 * 1024


def _save_part(call: Call, file_id: int, part: int, data: bytes, total: int | None) -> bool:
    if part < 0 or (total is not None and not 0 <= part < total):
        raise RpcFailure(400, "FILE_PART_INVALID")
    if len(data) > MAX_PART:
        raise RpcFailure(400, "FILE_PART_TOO_BIG")
    if not data:
        raise RpcFailure(400, "FILE_PART_EMPTY")
    call.world.uploads.setdefault((call.auth.auth_key.key_id, file_id), {})[part] = data
    return True


@handler(functions.upload.SaveFilePartRequest)
def save_file_part(call: Call, req: functions.upload.SaveFilePartRequest) -> bool:
    return _save_part(call, req.file_id, req.file_part, req.bytes, None)


@handler(functions.upload.SaveBigFilePartRequest)
def save_big_file_part(call: Call, req: functions.upload.SaveBigFilePartRequest) -> bool:
    return _save_part(call, req.file_id, req.file_part, req.bytes, req.file_total_parts)


@handler(functions.upload.GetFileRequest)
def get_file(call: Call, req: functions.upload.GetFileRequest) -> types.upload.File:
    call.me()
    location = req.location
    if not isinstance(location, types.InputDocumentFileLocation | types.InputPhotoFileLocation):
        raise RpcFailure(400, "LOCATION_INVALID")
    stored = call.world.files.get(location.id)
    if stored is None or stored.media.access_hash != location.access_hash:
        raise RpcFailure(400, "LOCATION_INVALID")
    if isinstance(location, types.InputDocumentFileLocation) and location.thumb_size:
        raise RpcFailure(400, "LOCATION_INVALID")  # no thumbnails are generated
    if not 0 < req.limit <= MAX_DOWNLOAD_CHUNK:
        raise RpcFailure(400, "LIMIT_INVALID")
    if req.offset < 0:
        raise RpcFailure(400, "OFFSET_INVALID")
    chunk = stored.data[req.offset : req.offset + req.limit]
    return types.upload.File(
        type=types.storage.FileUnknown(), mtime=call.world.clock.unixtime(), bytes=chunk
    )
