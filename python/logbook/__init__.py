# SPDX-License-Identifier: MIT
"""logbook: an embeddable storage engine with a validated, reversible,
verifiable batch log, from Python.

Every write happens inside a batch; a batch is validated, then committed
atomically together with its log (each key's before- and after-image), so
any committed batch can later be rolled back on its own, the database
replayed to any batch, and its history audited and verified::

    import logbook

    with logbook.open("notes.db") as db:
        db.create_table("notes")                      # opaque bytes
        db.create_table("people", {"closed": True, "fields": [
            {"name": "name", "type": "str", "required": True}]})
        with db.batch("first") as b:
            b.insert("people", "ada", {"name": "Ada"})
            b.put("notes", "a", b"apple")
        print(b.result.to_dict())
        db.rollback(b.result.batch_id)                # undo it on its own

The package binds liblogbook (include/logbook.h) through cffi in API mode.
Every call into the library releases the GIL, so threads sharing one
:class:`Database` run their reads, commits, rollbacks, replays and verifies
in parallel as far as the library allows (docs/PYTHON.md, "Threads").
"""

import datetime as _datetime
import functools as _functools
import os as _os
import threading as _threading
import time as _time_mod
import weakref as _weakref

import msgpack as _msgpack

from ._logbook import ffi as _ffi
from ._logbook import lib as _lib

__version__ = "0.1.0"

__all__ = [
    "open", "Database", "Batch", "Snapshot", "BatchResult", "Issue",
    "BatchInfo", "Change", "TableInfo", "VerifyReport", "Checkpoint",
    "Consumer",
    "Error", "NotFoundError", "InvalidError", "ValidationError",
    "ConflictError", "CorruptError", "PrunedError", "FullError", "BusyError",
    "NoMemoryError", "IoError", "VersionError", "TooBigError", "ExistsError",
    "library_version", "FORMAT_VERSION", "KEY_MAX", "LABEL_MAX",
]

#: The on-disk format version the linked library writes and reads.
FORMAT_VERSION = _lib.LB_FORMAT_VERSION
#: The longest key, in bytes.
KEY_MAX = _lib.LB_KEY_MAX
#: The longest batch label, in bytes.
LABEL_MAX = _lib.LB_LABEL_MAX


def library_version():
    """The version of the linked liblogbook, as a string such as "0.1.0"."""
    return _ffi.string(_lib.lb_version(_ffi.NULL, _ffi.NULL,
                                       _ffi.NULL)).decode()


# ---------------------------------------------------------------------------
# Exceptions: one class per LB_E* code.

class Error(Exception):
    """A logbook call failed.

    Attributes:
        code: the negative ``LB_E*`` code the library returned (an int).
        errmsg: the library's detail of the failure (``lb_errmsg()``).
        result: the :class:`BatchResult` of the call, when it has one
            (a refused commit or rollback), else None.
    """

    code = None

    def __init__(self, errmsg="", code=None, result=None):
        if code is not None:
            self.code = code
        self.errmsg = errmsg
        self.result = result
        name = _ffi.string(_lib.lb_strerror(self.code)).decode() \
            if self.code is not None else "error"
        super().__init__("%s: %s" % (name, errmsg) if errmsg else name)

    @property
    def issues(self):
        """The issues of the call's result (an empty list when none)."""
        return list(self.result.issues) if self.result is not None else []


class NotFoundError(Error, LookupError):
    """LB_ENOTFOUND: no such key, table, batch or database."""
    code = _lib.LB_ENOTFOUND


class InvalidError(Error, ValueError):
    """LB_EINVAL: an invalid argument or state (a closed database, a
    read-only one written to, a bad schema, a batch used from another
    thread)."""
    code = _lib.LB_EINVAL


class ValidationError(Error):
    """LB_EVALIDATION: a batch (or a rollback, or a schema change) broke a
    validation rule. Nothing was written; ``.result`` is the refused
    :class:`BatchResult` and ``.issues`` every issue found."""
    code = _lib.LB_EVALIDATION


class ConflictError(Error):
    """LB_ECONFLICT: a rollback met later changes. ``.issues`` name the
    later batches (``issue.batch``) that changed the keys."""
    code = _lib.LB_ECONFLICT


class CorruptError(Error):
    """LB_ECORRUPT: damaged or inconsistent data on disk (also a failed
    :meth:`Database.verify`, whose report is in ``.report``)."""
    code = _lib.LB_ECORRUPT
    report = None


class PrunedError(Error):
    """LB_EPRUNED: the batch's log was pruned."""
    code = _lib.LB_EPRUNED


class FullError(Error):
    """LB_EFULL: the disk, the file size limit or the map is full."""
    code = _lib.LB_EFULL


class BusyError(Error):
    """LB_EBUSY: a resource is in use (the database is open in this
    process already, LMDB's reader table is full); call again."""
    code = _lib.LB_EBUSY


class NoMemoryError(Error, MemoryError):
    """LB_ENOMEM: out of memory or address space."""
    code = _lib.LB_ENOMEM


class IoError(Error):
    """LB_EIO: the operating system or LMDB failed."""
    code = _lib.LB_EIO


class VersionError(Error):
    """LB_EVERSION: written by a newer (or unreleased older) format."""
    code = _lib.LB_EVERSION


class TooBigError(Error, ValueError):
    """LB_ETOOBIG: a key, value, label or name exceeds its limit, or a
    batch is larger than one transaction holds."""
    code = _lib.LB_ETOOBIG


class ExistsError(Error):
    """LB_EEXIST: the table, or a non-empty destination, exists already."""
    code = _lib.LB_EEXIST


_ERRORS = {c.code: c for c in (
    NotFoundError, InvalidError, ValidationError, ConflictError,
    CorruptError, PrunedError, FullError, BusyError, NoMemoryError, IoError,
    VersionError, TooBigError, ExistsError)}


def _errmsg():
    return _ffi.string(_lib.lb_errmsg()).decode("utf-8", "replace")


def _error(rc, result=None, msg=None):
    cls = _ERRORS.get(rc)
    text = _errmsg() if msg is None else msg
    if cls is None:
        return Error(text, code=rc, result=result)
    return cls(text, result=result)


def _check(rc):
    if rc < 0:
        raise _error(rc)
    return rc


# ---------------------------------------------------------------------------
# Keys and values.

def _key(key):
    """A key as bytes: str is encoded as UTF-8, bytes-like kept."""
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError("a key is str or bytes, not %s" % type(key).__name__)


def _key_out(raw):
    """A stored key: str when it is valid UTF-8, else bytes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _name(name, what="table"):
    if not isinstance(name, str):
        raise TypeError("a %s name is a str, not %s" %
                        (what, type(name).__name__))
    return name.encode("utf-8")


# A stored msgpack value as Python objects (str as str, bin as bytes).
_unpack = _functools.partial(_msgpack.unpackb, raw=False,
                             strict_map_key=False,
                             unicode_errors="surrogateescape")


_new = _ffi.new
_lib_get = _lib.lb_get
# Output parameters of Database.get, one pair per thread (a thread uses
# its pair only between two of its own statements, and cffi objects are
# freed with the dict when the interpreter exits).
_outs = {}
_ENOTFOUND = _lib.LB_ENOTFOUND
_EVALIDATION = _lib.LB_EVALIDATION
_get_ident = _threading.get_ident







def _path(p):
    return _os.fsencode(p)


# ---------------------------------------------------------------------------
# Results.

_ISSUE_KINDS = {
    _lib.LB_ISSUE_FORMAT: "format",
    _lib.LB_ISSUE_DUPLICATE: "duplicate",
    _lib.LB_ISSUE_MISSING: "missing",
    _lib.LB_ISSUE_FOREIGN_KEY: "foreign_key",
    _lib.LB_ISSUE_CONFLICT: "conflict",
}


class Issue:
    """One validation or conflict issue.

    Attributes:
        kind: "format", "duplicate", "missing", "foreign_key" or "conflict".
        table: the table of the record.
        key: its key (str when valid UTF-8, else bytes).
        field: the field concerned, or None.
        message: a sentence for humans.
        batch: for "conflict", the later batch that last changed the key;
            for "foreign_key" on a rollback, the batch of the referrer;
            else 0.
    """

    __slots__ = ("kind", "table", "key", "field", "message", "batch")

    def __init__(self, kind, table, key, field, message, batch=0):
        self.kind = kind
        self.table = table
        self.key = key
        self.field = field
        self.message = message
        self.batch = batch

    def to_dict(self):
        """The issue as a dict of plain values (bytes keys as latin-1
        text), ready for json.dumps()."""
        key = self.key
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        return {"kind": self.kind, "table": self.table, "key": key,
                "field": self.field, "message": self.message,
                "batch": self.batch}

    def __eq__(self, other):
        return isinstance(other, Issue) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "Issue(%s %s %r%s: %s)" % (
            self.kind, self.table, self.key,
            " field %s" % self.field if self.field else "", self.message)


class BatchResult:
    """The outcome of a commit, a rollback, a schema change or a replay.

    Attributes:
        batch_id: the committed batch (0 when nothing was written: a
            refused or empty batch, a dry run).
        success: True when the call succeeded.
        records: change records written (on a dry run: that would be).
        error: None on success, else the failure's text.
        issues: the :class:`Issue` list (at most LB_ISSUES_MAX of them).
        issues_total: every issue found, kept or not.
        undone: for rollbacks, the batches undone (newest first).
        label: the batch's label, when the call had one.
        code: 0, or the negative ``LB_E*`` code of the failure.
    """

    __slots__ = ("batch_id", "success", "records", "error", "issues",
                 "issues_total", "undone", "label", "code")

    def __init__(self, batch_id=0, success=True, records=0, error=None,
                 issues=(), issues_total=None, undone=(), label=None,
                 code=0):
        self.batch_id = batch_id
        self.success = success
        self.records = records
        self.error = error
        self.issues = list(issues)
        self.issues_total = (len(self.issues) if issues_total is None
                             else issues_total)
        self.undone = list(undone)
        self.label = label
        self.code = code

    def to_dict(self):
        """The result as a dict of plain values, for logging (json.dumps
        takes it as it is)."""
        return {"batch_id": self.batch_id, "success": self.success,
                "records": self.records, "error": self.error,
                "issues": [i.to_dict() for i in self.issues],
                "issues_total": self.issues_total,
                "undone": list(self.undone), "label": self.label}

    def __bool__(self):
        return self.success

    def __repr__(self):
        return ("BatchResult(batch_id=%d, success=%s, records=%d, "
                "issues=%d)" % (self.batch_id, self.success, self.records,
                                self.issues_total))


def _result(res, rc, label=None, errmsg=None):
    issues = []
    for i in range(res.nissues):
        it = res.issues[i]
        issues.append(Issue(
            _ISSUE_KINDS.get(it.kind, str(it.kind)),
            _ffi.string(it.table).decode("utf-8", "replace")
            if it.table != _ffi.NULL else None,
            _key_out(_ffi.buffer(it.key, it.klen)[:])
            if it.key != _ffi.NULL else None,
            _ffi.string(it.field).decode("utf-8", "replace")
            if it.field != _ffi.NULL else None,
            _ffi.string(it.message).decode("utf-8", "replace")
            if it.message != _ffi.NULL else "",
            it.batch))
    undone = [res.undone[i] for i in range(res.nundone)] \
        if res.undone != _ffi.NULL else []
    return BatchResult(batch_id=res.batch_id, success=rc == 0,
                       records=res.records,
                       error=None if rc == 0 else (errmsg or _errmsg()),
                       issues=issues, issues_total=res.nissues_total,
                       undone=undone, label=label, code=rc)


def _finish(res, rc, label=None):
    """Turn a filled lb_result into a BatchResult (freeing it), raising
    the code's exception (carrying the result) when rc is negative."""
    msg = _errmsg() if rc < 0 else None
    try:
        r = _result(res, rc, label, msg)
    finally:
        _lib.lb_result_free(res)
    if rc < 0:
        raise _error(rc, result=r, msg=msg)
    return r


# ---------------------------------------------------------------------------
# Schemas: the dict of one table in a schema file (docs/CLI.md).

_TYPES = {"any": _lib.LB_ANY, "nil": _lib.LB_NIL, "bool": _lib.LB_BOOL,
          "int": _lib.LB_INT, "float": _lib.LB_FLOAT, "str": _lib.LB_STR,
          "bin": _lib.LB_BIN, "array": _lib.LB_ARRAY, "map": _lib.LB_MAP}
_TYPE_NAMES = {v: k for k, v in _TYPES.items()}
_FORMATS = {"date": _lib.LB_FMT_DATE, "date-time": _lib.LB_FMT_DATETIME}
_FORMAT_NAMES = {v: k for k, v in _FORMATS.items()}
_TABLE_KEYS = {"name", "closed", "fields", "key_field"}
_FIELD_KEYS = {"name", "type", "required", "nullable", "max_len", "ref",
               "enum", "pattern", "format", "min", "max"}


def _bad_schema(msg):
    return InvalidError("schema: " + msg)


def _schema_c(schema, keep):
    """An lb_schema * for a schema dict (NULL for None or no "fields");
    every cffi object it points to is appended to keep."""
    if schema is None:
        return _ffi.NULL
    if not isinstance(schema, dict):
        raise TypeError("a schema is a dict, not %s" % type(schema).__name__)
    unknown = set(schema) - _TABLE_KEYS
    if unknown:
        raise _bad_schema("unknown member(s) %s" % ", ".join(sorted(unknown)))
    if "fields" not in schema:
        return _ffi.NULL
    fields = schema["fields"]
    if not isinstance(fields, (list, tuple)):
        raise _bad_schema('"fields" must be a list')

    def cstr(s, what):
        if not isinstance(s, str):
            raise _bad_schema("%s must be a string" % what)
        c = _ffi.new("char[]", s.encode("utf-8"))
        keep.append(c)
        return c

    arr = _ffi.new("lb_field[]", max(len(fields), 1))
    keep.append(arr)
    for i, f in enumerate(fields):
        if not isinstance(f, dict):
            raise _bad_schema("field %d must be a dict" % i)
        unknown = set(f) - _FIELD_KEYS
        if unknown:
            raise _bad_schema("field %d: unknown member(s) %s" %
                              (i, ", ".join(sorted(unknown))))
        c = arr[i]
        c.name = cstr(f.get("name"), "field %d: \"name\"" % i)
        t = f.get("type", "any")
        if t not in _TYPES:
            raise _bad_schema("field %r: unknown type %r" % (f["name"], t))
        c.type = _TYPES[t]
        flags = 0
        for member, bit in (("required", _lib.LB_REQUIRED),
                            ("nullable", _lib.LB_NULLABLE)):
            v = f.get(member, False)
            if not isinstance(v, bool):
                raise _bad_schema("field %r: %r must be true or false" %
                                  (f["name"], member))
            if v:
                flags |= bit
        c.flags = flags
        ml = f.get("max_len", 0)
        if not isinstance(ml, int) or isinstance(ml, bool) or \
                not 0 <= ml <= 0xFFFFFFFF:
            raise _bad_schema("field %r: \"max_len\" must be an integer "
                              "from 0 to 4294967295" % f["name"])
        c.max_len = ml
        if f.get("ref") is not None:
            c.ref = cstr(f["ref"], "field %r: \"ref\"" % f["name"])
        if f.get("enum") is not None:
            ev = f["enum"]
            if not isinstance(ev, (list, tuple)) or not ev:
                raise _bad_schema("field %r: \"enum\" must be a non-empty "
                                  "list" % f["name"])
            texts = []
            for v in ev:
                if isinstance(v, str):
                    texts.append(cstr(v, "enum value"))
                elif isinstance(v, int) and not isinstance(v, bool):
                    texts.append(cstr(str(v), "enum value"))
                else:
                    raise _bad_schema("field %r: enum values are strings or "
                                      "integers" % f["name"])
            ea = _ffi.new("const char *[]", texts)
            keep.append(ea)
            c.enum_values = ea
            c.nenum = len(texts)
        if f.get("pattern") is not None:
            c.pattern = cstr(f["pattern"], "field %r: \"pattern\"" %
                             f["name"])
        if f.get("format") is not None:
            if f["format"] not in _FORMATS:
                raise _bad_schema("field %r: \"format\" is \"date\" or "
                                  "\"date-time\"" % f["name"])
            c.format = _FORMATS[f["format"]]
        has = 0
        for member, bit in (("min", _lib.LB_HAS_MIN),
                            ("max", _lib.LB_HAS_MAX)):
            v = f.get(member)
            if v is None:
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise _bad_schema("field %r: %r must be a number" %
                                  (f["name"], member))
            setattr(c, member, float(v))
            has |= bit
        c.has_min_max = has
    s = _ffi.new("lb_schema *")
    keep.append(s)
    s.fields = arr
    s.nfields = len(fields)
    closed = schema.get("closed", False)
    if not isinstance(closed, bool):
        raise _bad_schema('"closed" must be true or false')
    s.closed = int(closed)
    if schema.get("key_field") is not None:
        s.key_field = cstr(schema["key_field"], '"key_field"')
    return s


def _cs(p):
    return _ffi.string(p).decode("utf-8", "replace") if p != _ffi.NULL \
        else None


def _schema_py(s):
    """The schema dict of an lb_schema * (None for NULL)."""
    if s == _ffi.NULL:
        return None
    fields = []
    for i in range(s.nfields):
        c = s.fields[i]
        f = {"name": _cs(c.name), "type": _TYPE_NAMES.get(c.type, "any")}
        if c.flags & _lib.LB_REQUIRED:
            f["required"] = True
        if c.flags & _lib.LB_NULLABLE:
            f["nullable"] = True
        if c.max_len:
            f["max_len"] = c.max_len
        if c.ref != _ffi.NULL:
            f["ref"] = _cs(c.ref)
        if c.nenum:
            ev = [_cs(c.enum_values[j]) for j in range(c.nenum)]
            f["enum"] = [int(v) for v in ev] if c.type == _lib.LB_INT else ev
        if c.pattern != _ffi.NULL:
            f["pattern"] = _cs(c.pattern)
        if c.format in _FORMAT_NAMES:
            f["format"] = _FORMAT_NAMES[c.format]
        for member, bit in (("min", _lib.LB_HAS_MIN),
                            ("max", _lib.LB_HAS_MAX)):
            if c.has_min_max & bit:
                v = getattr(c, member)
                f[member] = int(v) if v == int(v) and abs(v) <= 2 ** 53 \
                    else v
        fields.append(f)
    out = {"closed": bool(s.closed)}
    if s.key_field != _ffi.NULL:
        out["key_field"] = _cs(s.key_field)
    out["fields"] = fields
    return out


def _schema_image(raw):
    """The schema dict of a TABLE record's image (docs/FORMAT.md §6): None
    for an opaque table; the raw bytes when it is not a schema this
    version knows."""
    try:
        sver, kind, closed, fields, key_field = _unpack(raw)
        if sver != 2:
            return raw
        if kind == 0:
            return None
        out = {"closed": bool(closed)}
        if key_field is not None:
            out["key_field"] = key_field
        out["fields"] = []
        for (name, typ, flags, max_len, ref, enum, pattern, fmt, lo,
             hi) in fields:
            f = {"name": name, "type": _TYPE_NAMES.get(typ, "any")}
            if flags & _lib.LB_REQUIRED:
                f["required"] = True
            if flags & _lib.LB_NULLABLE:
                f["nullable"] = True
            for k, v in (("max_len", max_len or None), ("ref", ref),
                         ("enum", enum), ("pattern", pattern),
                         ("format", _FORMAT_NAMES.get(fmt)), ("min", lo),
                         ("max", hi)):
                if v is not None:
                    if k in ("min", "max") and v == int(v) and \
                            abs(v) <= 2 ** 53:
                        v = int(v)
                    f[k] = v
            out["fields"].append(f)
        return out
    except (ValueError, TypeError, _msgpack.ExtraData,
            _msgpack.FormatError, _msgpack.StackError):
        return raw


# ---------------------------------------------------------------------------
# Walks: the library calls back into Python; each callback copies what it
# is handed (valid only during the call) into the list behind ctx.

@_ffi.def_extern()
def _lbpy_table_cb(ctx, name, schema, records):
    _ffi.from_handle(ctx).append((_cs(name), _schema_py(schema), records))
    return 0


def _change_raw(c):
    return (c.op, _cs(c.table),
            _ffi.buffer(c.key, c.klen)[:] if c.key != _ffi.NULL else None,
            _ffi.buffer(c.before, c.blen)[:] if c.has_before else None,
            _ffi.buffer(c.after, c.alen)[:] if c.has_after else None)


@_ffi.def_extern()
def _lbpy_change_cb(ctx, c):
    _ffi.from_handle(ctx).append(_change_raw(c))
    return 0


@_ffi.def_extern()
def _lbpy_history_cb(ctx, batch, c):
    _ffi.from_handle(ctx).append((batch, _change_raw(c)))
    return 0


@_ffi.def_extern()
def _lbpy_checkpoint_cb(ctx, batch, path, time_ns):
    _ffi.from_handle(ctx).append((batch, _os.fsdecode(_ffi.string(path)),
                                  time_ns))
    return 0


@_ffi.def_extern()
def _lbpy_consumer_cb(ctx, c):
    _ffi.from_handle(ctx).append(Consumer(c))
    return 0


_OPS = {_lib.LB_OP_PUT: "put", _lib.LB_OP_DELETE: "delete",
        _lib.LB_OP_TABLE: "table"}


def _time(ns):
    return _datetime.datetime.fromtimestamp(ns / 1e9, _datetime.timezone.utc)


class Change:
    """One change record of the log.

    Attributes:
        op: "put", "delete" or "table" (a table created or altered).
        table: the table.
        key: the key (for "table": the table name).
        before: the value before the change, or None when the key did not
            exist (decoded as for :meth:`Database.get`; for "table", the
            schema dict, or None for an opaque table).
        after: the value after, or None when it was deleted.
        batch: the batch that made the change (set by
            :meth:`Database.history`; for :meth:`Database.changes`, the
            batch asked for).
    """

    __slots__ = ("op", "table", "key", "before", "after", "batch",
                 "had_before", "has_after")

    def __init__(self, op, table, key, before, after, batch, had_before,
                 has_after):
        self.op = op
        self.table = table
        self.key = key
        self.before = before
        self.after = after
        self.batch = batch
        self.had_before = had_before
        self.has_after = has_after

    def to_dict(self):
        """The change as a dict."""
        return {"op": self.op, "table": self.table, "key": self.key,
                "before": self.before, "after": self.after,
                "batch": self.batch}

    def __repr__(self):
        return "Change(%s %s %r: %r -> %r)" % (self.op, self.table, self.key,
                                              self.before, self.after)


class BatchInfo:
    """What the log knows about one batch (``lb_batch_info``).

    Attributes: id, time (an aware UTC datetime), time_ns, label,
    records, segments, raw_bytes, stored_bytes, undoes (the batch a
    rollback batch undoes, else 0), rolled_back_by (the batch that undid
    this one, else 0), pruned (bool), hash (the chain hash, hex), and
    standing (True unless a rollback undid it).
    """

    __slots__ = ("id", "time_ns", "label", "records", "segments",
                 "raw_bytes", "stored_bytes", "undoes", "rolled_back_by",
                 "pruned", "hash")

    def __init__(self, info):
        self.id = info.id
        self.time_ns = info.time_ns
        self.label = _ffi.string(info.label).decode("utf-8", "replace")
        self.records = info.records
        self.segments = info.segments
        self.raw_bytes = info.raw_bytes
        self.stored_bytes = info.stored_bytes
        self.undoes = info.undoes
        self.rolled_back_by = info.rolled_back_by
        self.pruned = bool(info.pruned)
        self.hash = bytes(_ffi.buffer(info.hash, 32)).hex()

    @property
    def time(self):
        return _time(self.time_ns)

    @property
    def standing(self):
        return self.rolled_back_by == 0

    def to_dict(self):
        """The batch's description as a dict of plain values."""
        d = {k: getattr(self, k) for k in self.__slots__}
        d["time"] = self.time.isoformat()
        return d

    def __repr__(self):
        return "BatchInfo(id=%d, label=%r, records=%d)" % (
            self.id, self.label, self.records)


class TableInfo:
    """One table: ``name``, ``schema`` (the schema dict, or None for an
    opaque table) and ``records`` (the number of keys)."""

    __slots__ = ("name", "schema", "records")

    def __init__(self, name, schema, records):
        self.name = name
        self.schema = schema
        self.records = records

    def to_dict(self):
        return {"name": self.name, "schema": self.schema,
                "records": self.records}

    def __repr__(self):
        return "TableInfo(%r, records=%d, %s)" % (
            self.name, self.records,
            "opaque" if self.schema is None else "schema")


class VerifyReport:
    """What :meth:`Database.verify` found: batches, segments, records
    (counted), bad_batch (the first bad batch, 0 if none), chain_ok,
    replay_ok, detail (what is wrong, or ""), and ok."""

    __slots__ = ("batches", "segments", "records", "bad_batch", "chain_ok",
                 "replay_ok", "detail", "ok")

    def __init__(self, rep, ok):
        self.batches = rep.batches
        self.segments = rep.segments
        self.records = rep.records
        self.bad_batch = rep.bad_batch
        self.chain_ok = bool(rep.chain_ok)
        self.replay_ok = bool(rep.replay_ok)
        self.detail = _ffi.string(rep.detail).decode("utf-8", "replace")
        self.ok = ok

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return "VerifyReport(ok=%s, batches=%d, records=%d)" % (
            self.ok, self.batches, self.records)


class Consumer:
    """A named consumer of the log: ``name``, ``acked`` (the last batch it
    acknowledged, 0: none), ``time`` of that acknowledgement, and ``lost``
    (True when :meth:`Database.prune` dropped batches it had not
    acknowledged, being past the consumer limits)."""

    __slots__ = ("name", "acked", "time_ns", "lost")

    def __init__(self, c):
        self.name = _ffi.string(c.name).decode("utf-8", "replace")
        self.acked = c.acked
        self.time_ns = c.time_ns
        self.lost = bool(c.lost)

    @property
    def time(self):
        return _time(self.time_ns)

    def to_dict(self):
        return {"name": self.name, "acked": self.acked,
                "time": self.time.isoformat(), "lost": self.lost}

    def __repr__(self):
        return "Consumer(%r, acked=%d%s)" % (self.name, self.acked,
                                            ", lost" if self.lost else "")


class Checkpoint:
    """A registered checkpoint: ``batch``, ``path`` and ``time``."""

    __slots__ = ("batch", "path", "time_ns")

    def __init__(self, batch, path, time_ns):
        self.batch = batch
        self.path = path
        self.time_ns = time_ns

    @property
    def time(self):
        return _time(self.time_ns)

    def __repr__(self):
        return "Checkpoint(batch=%d, path=%r)" % (self.batch, self.path)


# ---------------------------------------------------------------------------
# The database.

def open(path, create=True, sync=True, readonly=False, compression=None,
         segment_size=None, map_size=None):
    """Open (by default creating) the database in directory ``path``.

    Args:
        path: the database directory (str, bytes or os.PathLike).
        create: create the directory and the database when missing.
        sync: fsync at every commit (False: a crash may lose the last
            batches, never consistency).
        readonly: open read-only; batches are refused (``create`` is then
            ignored).
        compression: zlib level 0..9 of new log segments (None: 1).
        segment_size: raw bytes per log segment (None: 128 KiB).
        map_size: initial LMDB map size in bytes (None: default; it grows).

    Returns:
        a :class:`Database`, also a context manager that closes it.

    Raises:
        NotFoundError: no database there and ``create`` is False.
        BusyError: this process has the database open already.
        InvalidError, VersionError, CorruptError, IoError, FullError,
        NoMemoryError: as ``lb_open()`` returns them.
    """
    return Database(path, create=create, sync=sync, readonly=readonly,
                    compression=compression, segment_size=segment_size,
                    map_size=map_size)


class Database:
    """An open logbook database (an ``lb_db`` handle).

    Share one Database between the threads of a process: reads, batches (one
    open at a time, each bound to the thread that began it), rollbacks and
    the rest may come from any thread. A process opens a directory once.
    """

    def __init__(self, path, create=True, sync=True, readonly=False,
                 compression=None, segment_size=None, map_size=None):
        self.path = _os.fspath(path)
        opts = _ffi.new("lb_options *")
        _lib.lb_options_init(opts)
        flags = 0
        if readonly:
            flags |= _lib.LB_RDONLY
        elif create:
            flags |= _lib.LB_CREATE
        if not sync:
            flags |= _lib.LB_NOSYNC
        opts.flags = flags
        if compression is not None:
            opts.compression = compression
        if segment_size is not None:
            opts.segment_size = segment_size
        if map_size is not None:
            opts.map_size = map_size
        self.readonly = bool(readonly)
        self._db = None
        # Calls under way: list.append and list.pop are atomic, so a call
        # registers itself without a lock; close() waits for the list to
        # empty (each call checks the handle again once registered).
        self._inflight = []
        self._close_lock = _threading.Lock()
        self._batch_threads = set()
        self._snapshots = _weakref.WeakSet()
        self._tinfo = {}
        out = _ffi.new("lb_db **")
        _check(_lib.lb_open(_path(path), opts, out))
        self._db = out[0]
        self._reload_tables()

    # -- the handle's life ------------------------------------------------

    def _enter(self):
        db = self._db
        if db is None:
            raise InvalidError("the database is closed")
        self._inflight.append(None)
        if self._db is None:
            self._inflight.pop()
            raise InvalidError("the database is closed")
        return db

    def _leave(self):
        self._inflight.pop()

    def _writer_check(self):
        if _threading.get_ident() in self._batch_threads:
            raise InvalidError("this thread holds an open batch of the "
                               "database: commit or abort it first")

    @property
    def closed(self):
        """True once :meth:`close` ran."""
        return self._db is None

    def close(self):
        """Close the database. Open snapshots (and their scans) are closed
        first; a batch still open is an error (commit or abort it). Calls
        running in other threads finish first; later calls raise
        InvalidError. Closing twice does nothing."""
        with self._close_lock:
            db = self._db
            if db is None:
                return
            if self._batch_threads:
                raise InvalidError("a batch of the database is still open")
            self._db = None
            while self._inflight:
                if self._batch_threads:  # one began meanwhile
                    self._db = db
                    raise InvalidError("a batch of the database is still "
                                       "open")
                _time_mod.sleep(0.001)
            try:
                for s in list(self._snapshots):
                    s._close_for_db()
            finally:
                _lib.lb_close(db)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_db", None) is not None and \
                not self._batch_threads:
            self.close()

    def __repr__(self):
        return "<logbook.Database %r%s>" % (
            self.path, " closed" if self.closed else "")

    # -- tables -----------------------------------------------------------

    def _tables_raw(self):
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_tables(db, _lib._lbpy_table_cb, h)
        finally:
            self._leave()
        _check(rc)
        return out

    def _reload_tables(self, raw=None):
        if raw is None:
            raw = self._tables_raw()
        self._tinfo = {n: (n.encode("utf-8"), s is not None)
                       for n, s, _ in raw}

    def _table(self, table):
        """(name as bytes, has a schema) of a table, from the cache of
        the tables, reloaded when it does not know the name (another
        process may have created the table)."""
        t = self._tinfo.get(table)
        if t is None:
            cname = _name(table)
            self._reload_tables()
            t = self._tinfo.get(table)
            if t is None:
                return cname, False  # the library answers LB_ENOTFOUND
        return t

    def _has_schema(self, table):
        return self._table(table)[1]

    def create_table(self, name, schema=None):
        """Create a table in a logged batch of its own; returns its id.

        Args:
            name: 1..64 characters of ``[A-Za-z0-9_.-]``.
            schema: None for a table of opaque bytes, or the dict a schema
                file holds for one table (docs/CLI.md, "Schema files"):
                ``{"closed": True, "key_field": "id", "fields": [{"name":
                "id", "type": "str", "required": True, "max_len": 32}, ...]}``
                (a dict without "fields" is an opaque table too).

        Raises:
            ExistsError: the table exists.
            InvalidError: a bad name or schema, a read-only database, or
                this thread holds an open batch.
            TooBigError: the name is too long.
        """
        keep = []
        cname = _name(name)
        s = _schema_c(schema, keep)
        self._writer_check()
        db = self._enter()
        try:
            rc = _lib.lb_table_create(db, cname, s)
        finally:
            self._leave()
        _check(rc)
        self._tinfo[name] = (cname, s != _ffi.NULL)
        return self.last_batch

    def alter_table(self, name, schema):
        """Change a table's schema (None: opaque bytes) in a logged batch
        of its own, which rolls back like any batch. Returns a
        :class:`BatchResult` (batch_id 0 when the schema is unchanged).

        Raises:
            ValidationError: records do not fit the new schema (every
                issue in ``.issues``); nothing was written.
            NotFoundError: no such table.
            InvalidError: a bad schema, a read-only database.
        """
        keep = []
        cname = _name(name)
        s = _schema_c(schema, keep)
        self._writer_check()
        res = _ffi.new("lb_result *")
        db = self._enter()
        try:
            rc = _lib.lb_table_alter(db, cname, s, res)
        finally:
            self._leave()
        r = _finish(res, rc)
        self._reload_tables()
        return r

    def tables(self):
        """The tables, in name order, as :class:`TableInfo` (name, schema
        dict or None, records), from one consistent read."""
        raw = self._tables_raw()
        self._reload_tables(raw)
        return [TableInfo(n, s, r) for n, s, r in raw]

    # -- values -----------------------------------------------------------

    def _encode(self, table, value):
        if self._has_schema(table):
            if isinstance(value, (bytes, bytearray, memoryview)) and \
                    not isinstance(value, bytes):
                value = bytes(value)
            try:
                return _msgpack.packb(value, use_bin_type=True,
                                      unicode_errors="surrogateescape")
            except (TypeError, ValueError, OverflowError) as e:
                raise TypeError("table %r: a value must be msgpack "
                                "serialisable: %s" % (table, e)) from None
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise TypeError("table %r holds opaque bytes: a value is bytes, not "
                        "%s" % (table, type(value).__name__))

    def _decode(self, table, raw):
        if self._has_schema(table):
            return _unpack(raw)
        return raw

    # -- reads ------------------------------------------------------------

    def get(self, table, key, default=None):
        """The committed value of ``key`` in ``table``, or ``default`` when
        there is no such key (or table).

        A schema table's value is decoded from msgpack (a dict, usually);
        an opaque table's is bytes. Never waits for a writer.
        """
        t = self._tinfo.get(table) or self._table(table)
        k = key.encode("utf-8") if key.__class__ is str else _key(key)
        out = _outs.get(_get_ident())
        if out is None:
            out = _outs[_get_ident()] = (_new("void **"), _new("size_t *"))
        val, vlen = out
        # self._enter() and self._leave(), inlined: the hot path
        db = self._db
        inflight = self._inflight
        inflight.append(None)
        try:
            if db is None or self._db is None:
                raise InvalidError("the database is closed")
            rc = _lib_get(db, t[0], k, len(k), val, vlen)
        finally:
            inflight.pop()
        if rc:
            if rc == _ENOTFOUND:
                return default
            raise _error(rc)
        try:
            raw = _ffi.buffer(val[0], vlen[0])[:]
        finally:
            _lib.free(val[0])
        return _unpack(raw) if t[1] else raw

    def __contains__(self, table_key):
        table, key = table_key
        return self.get(table, key, _MISSING) is not _MISSING

    def snapshot(self):
        """A consistent read view of the last committed batch
        (:class:`Snapshot`): every read through it sees the same state,
        whatever commits meanwhile. Close it (or use ``with``) soon: a live
        snapshot holds back page reuse and map growth."""
        return Snapshot(self)

    def scan(self, table, start=None):
        """Iterate over ``(key, value)`` of ``table`` in key order (bytes
        order), from ``start`` (the first key >= it) or the first key,
        over a snapshot taken at the first step and closed at the end (or
        when the iterator is closed or collected). Keys are str when valid
        UTF-8, else bytes.

        Raises NotFoundError (at the first step) when there is no such
        table.
        """
        snap = Snapshot(self)
        try:
            yield from snap.scan(table, start)
        finally:
            snap.close()

    # -- batches ----------------------------------------------------------

    def batch(self, label=""):
        """Begin a write batch (a :class:`Batch`, also a context manager
        that commits on a normal exit and aborts on an exception). Only one
        batch is open at a time per database: this waits (GIL released)
        for the open one, in this process or another.

        Raises InvalidError on a read-only database or when this thread
        holds an open batch; TooBigError for a label over 255 bytes.
        """
        return Batch(self, label)

    # -- the log ----------------------------------------------------------

    @property
    def last_batch(self):
        """The id of the last committed batch (0 when none), read from the
        log on disk, so it counts other processes' batches."""
        out = _ffi.new("uint64_t *")
        db = self._enter()
        try:
            rc = _lib.lb_last_batch(db, out)
        finally:
            self._leave()
        _check(rc)
        return out[0]

    def batch_info(self, id):
        """The :class:`BatchInfo` of batch ``id``; NotFoundError when there
        is no such batch."""
        info = _ffi.new("lb_batch_info *")
        db = self._enter()
        try:
            rc = _lib.lb_batch_info_get(db, id, info)
        finally:
            self._leave()
        _check(rc)
        return BatchInfo(info)

    def log(self, since=None):
        """The batches after ``since`` (None or 0: all of them), oldest
        first, as a list of :class:`BatchInfo`."""
        last = self.last_batch
        return [self.batch_info(i) for i in range((since or 0) + 1, last + 1)]

    def _change(self, batch, raw):
        op, table, key, before, after = raw
        opname = _OPS.get(op, str(op))
        if opname == "table":
            dec = self._decode_schema
        else:
            dec = (lambda v: self._decode(table, v))
        k = _key_out(key) if key is not None else None
        return Change(opname, table, k,
                      dec(before) if before is not None else None,
                      dec(after) if after is not None else None, batch,
                      before is not None, after is not None)

    def _decode_schema(self, raw):
        return _schema_image(raw)

    def changes(self, id=None, since=None, follow=False, timeout=None):
        """The change records of batch ``id``, in log order, as a list of
        :class:`Change` (each segment is verified first).

        With ``since`` instead of ``id``: a generator of the
        :class:`Change` records of every batch after ``since``, batch by
        batch (``change.batch`` says which); with ``follow`` it then waits
        for the next batches (:meth:`wait`, the GIL released) and goes on,
        until ``timeout`` seconds pass without a new batch (None: forever;
        Ctrl-C stops it).

        Raises NotFoundError (no such batch), PrunedError (its log was
        pruned), CorruptError (a damaged segment).
        """
        if id is None:
            if since is None:
                raise TypeError("changes() needs a batch id or since=")
            return self._feed(since, follow, timeout)
        if since is not None or follow:
            raise TypeError("changes(): a batch id, or since=, not both")
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_changes(db, id, _lib._lbpy_change_cb, h)
        finally:
            self._leave()
        _check(rc)
        return [self._change(id, c) for c in out]

    def _feed(self, since, follow, timeout):
        seen = since
        while True:
            last = self.last_batch
            while seen < last:
                seen += 1
                for c in self.changes(seen):
                    yield c
            if not follow or self.wait(seen, timeout) is None:
                return

    def wait(self, after, timeout=None):
        """Wait until a batch after ``after`` is committed (by any thread
        or process) and return the last batch id; None when ``timeout``
        seconds (None: forever; 0: only look) passed first. The GIL is
        released while it waits, and Ctrl-C ends it."""
        if timeout is not None and timeout < 0:
            raise InvalidError("wait: a timeout is None or >= 0 seconds")
        deadline = None if timeout is None else \
            _time_mod.monotonic() + timeout
        last = _new("uint64_t *")
        while True:
            # at most a second per call, so that signals are seen
            if deadline is None:
                ms = 1000
            else:
                ms = max(0, min(1000, int((deadline - _time_mod.monotonic())
                                          * 1000 + 0.999)))
            db = self._enter()
            try:
                rc = _lib.lb_wait(db, after, ms, last)
            finally:
                self._leave()
            if rc == 0:
                return last[0]
            if rc != _lib.LB_EBUSY:
                raise _error(rc)
            if deadline is not None and _time_mod.monotonic() >= deadline:
                return None

    def get_asof(self, batch, table, key, default=None):
        """The value ``key`` of ``table`` held right after batch ``batch``
        (0: before the first batch), read in place from the log's per-key
        history, or ``default`` when it did not exist then.

        Raises NotFoundError when ``batch`` is past the last batch,
        PrunedError when the answer is in a pruned batch's log."""
        if batch > self.last_batch:
            raise NotFoundError("batch %d is past the last batch" % batch)
        t = self._table(table)
        k = _key(key)
        val = _new("void **")
        vlen = _new("size_t *")
        db = self._enter()
        try:
            rc = _lib.lb_get_asof(db, batch, t[0], k, len(k), val, vlen)
        finally:
            self._leave()
        if rc == _ENOTFOUND:
            return default
        _check(rc)
        try:
            raw = _ffi.buffer(val[0], vlen[0])[:]
        finally:
            _lib.free(val[0])
        return _unpack(raw) if t[1] else raw

    def diff(self, from_batch, to_batch):
        """Every key whose value differs between "right after batch
        ``from_batch``" and "right after ``to_batch``" (0: empty), as a
        list of :class:`Change` in table then key order: op "put" when the
        key holds a value after ``to_batch`` (``after``), "delete" when it
        does not; ``before`` is its value after ``from_batch``. A table
        created, removed or altered in between is one "table" change (key
        None) before its keys. Costs what the batches in between hold."""
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_diff(db, from_batch, to_batch, _lib._lbpy_change_cb,
                              h)
        finally:
            self._leave()
        _check(rc)
        return [self._change(0, c) for c in out]

    # -- consumers ----------------------------------------------------------

    def consumer_ack(self, name, batch):
        """Record that consumer ``name`` processed every batch up to
        ``batch`` (registering it when new). A registered consumer holds
        back :meth:`prune` past what it acknowledged (within the
        limits of :meth:`set_consumer_limits`)."""
        self._writer_check()
        db = self._enter()
        try:
            rc = _lib.lb_consumer_ack(db, _name(name, "consumer"), batch)
        finally:
            self._leave()
        _check(rc)

    def consumer(self, name):
        """The :class:`Consumer` ``name`` (``lost`` True when prune dropped
        batches it had not acknowledged). NotFoundError when there is no
        such consumer."""
        info = _new("lb_consumer_info *")
        db = self._enter()
        try:
            rc = _lib.lb_consumer_get(db, _name(name, "consumer"), info)
        finally:
            self._leave()
        if rc != _lib.LB_EPRUNED:
            _check(rc)
        return Consumer(info)

    def consumer_drop(self, name):
        """Forget consumer ``name``: it no longer holds back prune."""
        self._writer_check()
        db = self._enter()
        try:
            rc = _lib.lb_consumer_drop(db, _name(name, "consumer"))
        finally:
            self._leave()
        _check(rc)

    def consumers(self):
        """Every registered :class:`Consumer`, in name order (lost ones
        too)."""
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_consumers(db, _lib._lbpy_consumer_cb, h)
        finally:
            self._leave()
        _check(rc)
        return out

    def consumer_limits(self):
        """``(max_lag, max_age_s)``: how far behind (in batches, in seconds
        since its last acknowledgement) a consumer may fall before prune
        may drop what it has not acknowledged; 0 is no limit."""
        lag = _new("uint64_t *")
        age = _new("uint64_t *")
        db = self._enter()
        try:
            rc = _lib.lb_consumer_limits_get(db, lag, age)
        finally:
            self._leave()
        _check(rc)
        return lag[0], age[0]

    def set_consumer_limits(self, max_lag=0, max_age_s=0):
        """Set the consumer limits (see :meth:`consumer_limits`); stored in
        the database."""
        self._writer_check()
        db = self._enter()
        try:
            rc = _lib.lb_consumer_limits_set(db, max_lag, max_age_s)
        finally:
            self._leave()
        _check(rc)

    def history(self, table, key):
        """Every committed change of ``key`` in ``table``, newest batch
        first (the records of one batch in log order), rollback batches
        included, as a list of :class:`Change` whose ``batch`` is the batch
        that made it (empty when the key never changed)."""
        k = _key(key)
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_history(db, _name(table), k, len(k),
                                 _lib._lbpy_history_cb, h)
        finally:
            self._leave()
        _check(rc)
        return [self._change(b, c) for b, c in out]

    # -- rollback ---------------------------------------------------------

    def rollback(self, id, cascade=False, force=False, dry_run=False):
        """Undo batch ``id`` in one new, logged batch, and return its
        :class:`BatchResult` (``undone``: the batches undone, newest
        first; on ``dry_run`` nothing is written and batch_id is 0).

        Strict by default: a key a later batch changed is a conflict.
        ``cascade`` also undoes the later batches built on what it changes;
        ``force`` restores the before-images regardless (docs/ROLLBACK.md).

        Raises:
            ConflictError: later batches changed its keys (``.issues``
                name them in ``issue.batch``), or a table was created or
                removed since.
            ValidationError: the restored state would break a foreign key.
            NotFoundError: no such batch.
            InvalidError: ``cascade`` with ``force``; the batch was rolled
                back already; a read-only database; or this thread holds
                an open batch.
            PrunedError: its log was pruned.
        """
        flags = 0
        if cascade:
            flags |= _lib.LB_CASCADE
        if force:
            flags |= _lib.LB_FORCE
        if dry_run:
            flags |= _lib.LB_DRYRUN
        self._writer_check()
        res = _ffi.new("lb_result *")
        db = self._enter()
        try:
            rc = _lib.lb_rollback(db, id, flags, res)
        finally:
            self._leave()
        return _finish(res, rc)

    def rollback_to(self, id, dry_run=False):
        """Restore the state right after batch ``id`` (0: empty) in one new
        batch that undoes every later batch; returns its
        :class:`BatchResult` (batch_id 0 when the state is that already,
        or on ``dry_run``).

        Raises ValidationError (a foreign key would break), NotFoundError
        (``id`` past the last batch), PrunedError, InvalidError.
        """
        self._writer_check()
        res = _ffi.new("lb_result *")
        db = self._enter()
        try:
            rc = _lib.lb_rollback_to_ex(db, id, _lib.LB_DRYRUN if dry_run
                                        else 0, res)
        finally:
            self._leave()
        return _finish(res, rc)

    # -- checkpoints, replay, verify, prune -------------------------------

    def checkpoint(self, path):
        """Write a compacted, consistent copy of the database to ``path``
        (missing or empty) and register it; returns the batch it holds.

        Raises ExistsError when ``path`` is not empty."""
        self._writer_check()
        out = _ffi.new("uint64_t *")
        p = _path(path)
        db = self._enter()
        try:
            rc = _lib.lb_checkpoint(db, p, out)
        finally:
            self._leave()
        _check(rc)
        return out[0]

    def checkpoints(self):
        """The registered checkpoints, oldest first
        (:class:`Checkpoint`)."""
        out = []
        h = _ffi.new_handle(out)
        db = self._enter()
        try:
            rc = _lib.lb_checkpoints(db, _lib._lbpy_checkpoint_cb, h)
        finally:
            self._leave()
        _check(rc)
        return [Checkpoint(*c) for c in out]

    def replay(self, dest, to=None, from_checkpoint=None):
        """Build in ``dest`` (missing or empty) the database as it was right
        after batch ``to`` (None: the last), with the same log, from empty
        or from the checkpoint directory ``from_checkpoint``. Returns a
        :class:`BatchResult` whose batch_id is the batch replayed to and
        records the change records applied. Writers go on meanwhile.

        Raises ExistsError, NotFoundError (``to`` past the last batch),
        PrunedError (replay from a checkpoint instead), CorruptError,
        InvalidError (a checkpoint of another database or after ``to``).
        """
        res = _ffi.new("lb_result *")
        d = _path(dest)
        ck = _path(from_checkpoint) if from_checkpoint is not None \
            else _ffi.NULL
        db = self._enter()
        try:
            rc = _lib.lb_replay(db, d, to or 0, ck, res)
        finally:
            self._leave()
        return _finish(res, rc)

    def verify(self, replay=False):
        """Check the whole log (ids, headers, hash chain, every segment's
        checksums and records), and with ``replay`` also that a replay
        equals the tables. Returns a :class:`VerifyReport`.

        Raises CorruptError, with the report in ``.report``, when a check
        fails."""
        rep = _ffi.new("lb_verify_report *")
        db = self._enter()
        try:
            rc = _lib.lb_verify(db, _lib.LB_VERIFY_REPLAY if replay else 0,
                                rep)
        finally:
            self._leave()
        if rc < 0:
            e = _error(rc)
            e.report = VerifyReport(rep, False)
            raise e
        return VerifyReport(rep, True)

    def prune(self, before):
        """Drop the log segments of every batch older than ``before``
        (headers stay, so the chain still verifies). Needs a registered
        checkpoint at a batch >= before - 1 (:meth:`checkpoint`); raises
        InvalidError otherwise."""
        self._writer_check()
        db = self._enter()
        try:
            rc = _lib.lb_prune(db, before)
        finally:
            self._leave()
        _check(rc)


_MISSING = object()


# ---------------------------------------------------------------------------
# Batches.

class Batch:
    """An open write batch. Use it as a context manager::

        with db.batch("day 1") as b:
            b.insert("hearings", "H-1", {"id": "H-1", ...})
        b.result        # a BatchResult

    It commits on a normal exit and aborts on an exception. A write that
    breaks a rule (a format, a duplicate, a missing key) is not applied:
    it returns False and the batch goes on collecting issues; the commit
    then writes nothing and raises :class:`ValidationError` carrying every
    issue. A batch is bound to the thread that began it.
    """

    def __init__(self, db, label=""):
        if label is None:
            label = ""
        if not isinstance(label, str):
            raise TypeError("a label is a str")
        self.label = label
        self.result = None
        self._db = db
        self._b = None
        self._thread = _threading.get_ident()
        db._writer_check()
        out = _ffi.new("lb_batch **")
        handle = db._enter()
        try:
            rc = _lib.lb_batch_begin(handle, label.encode("utf-8"), out)
        except BaseException:
            db._leave()
            raise
        if rc < 0:
            db._leave()
            raise _error(rc)
        # The database stays "busy" (close waits) until the batch ends.
        self._b = out[0]
        self._pack = _msgpack.Packer(use_bin_type=True,
                                     unicode_errors="surrogateescape").pack
        db._batch_threads.add(self._thread)

    def _handle(self):
        if self._b is None:
            raise InvalidError("the batch is over (committed or aborted)")
        if _threading.get_ident() != self._thread:
            raise InvalidError("a batch is used by the thread that began it "
                               "only")
        return self._b

    def _end(self):
        self._b = None
        self._db._batch_threads.discard(self._thread)
        self._db._leave()

    @property
    def open(self):
        """True until the batch is committed or aborted."""
        return self._b is not None

    def _write(self, fn, table, key, value):
        b = self._b
        if b is None or _get_ident() != self._thread:
            b = self._handle()
        db = self._db
        t = db._tinfo.get(table) or db._table(table)
        k = key.encode("utf-8") if key.__class__ is str else _key(key)
        if t[1]:
            try:
                v = self._pack(value)
            except (TypeError, ValueError, OverflowError) as e:
                raise TypeError("table %r: a value must be msgpack "
                                "serialisable: %s" % (table, e)) from None
        elif value.__class__ is bytes:
            v = value
        else:
            v = db._encode(table, value)
        rc = fn(b, t[0], k, len(k), v, len(v))
        if rc:
            if rc == _EVALIDATION:
                return False
            raise _error(rc)
        return True

    def put(self, table, key, value):
        """Set ``key`` to ``value`` (insert or replace). Returns True, or
        False when the write broke a rule (an issue the commit reports)."""
        return self._write(_lib.lb_put, table, key, value)

    def insert(self, table, key, value):
        """Insert ``key``; an existing key is a "duplicate" issue. Returns
        True, or False when the write broke a rule."""
        return self._write(_lib.lb_insert, table, key, value)

    def update(self, table, key, value):
        """Replace the value of an existing ``key``; a missing key is a
        "missing" issue. Returns True, or False when the write broke a
        rule."""
        return self._write(_lib.lb_update, table, key, value)

    def delete(self, table, key, value=None):
        """Delete an existing ``key`` (``value`` is ignored: it is there so
        that the four writes take the same arguments); a missing key is a
        "missing" issue. Returns True, or False when it broke a rule."""
        b = self._handle()
        k = _key(key)
        rc = _lib.lb_delete(b, _name(table), k, len(k))
        if rc == _lib.LB_EVALIDATION:
            return False
        if rc < 0:
            raise _error(rc)
        return True

    def get(self, table, key, default=None):
        """The value of ``key`` as this batch sees it (its own writes
        included), or ``default``."""
        b = self._handle()
        k = _key(key)
        val = _ffi.new("const void **")
        vlen = _ffi.new("size_t *")
        rc = _lib.lb_batch_get(b, _name(table), k, len(k), val, vlen)
        if rc == _lib.LB_ENOTFOUND:
            return default
        if rc < 0:
            raise _error(rc)
        return self._db._decode(table, _ffi.buffer(val[0], vlen[0])[:])

    def commit(self):
        """Validate and commit the batch; returns its
        :class:`BatchResult` (also in ``self.result``). A batch with no
        records commits nothing (batch_id 0).

        Raises:
            ValidationError: a write or a foreign-key check found issues;
                nothing was written; ``.result``/``.issues`` hold them all.
            FullError, IoError, TooBigError, ...: the commit failed;
                nothing was written.
        """
        b = self._handle()
        res = _ffi.new("lb_result *")
        try:
            rc = _lib.lb_batch_commit(b, res)
        finally:
            self._end()
        try:
            self.result = _finish(res, rc, self.label)
        except Error as e:
            self.result = e.result
            raise
        return self.result

    def abort(self):
        """Discard the batch: nothing of it is written. Aborting an ended
        batch does nothing."""
        if self._b is None:
            return
        b = self._handle()
        try:
            _lib.lb_batch_abort(b)
        finally:
            self._end()
        self.result = BatchResult(success=False, error="aborted",
                                  label=self.label)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._b is None:
            return False
        if exc_type is not None:
            self.abort()
            return False
        self.commit()
        return False

    def __del__(self):
        # A batch left open by a thread that is going away is aborted by it
        # only; from the garbage collector of the same thread, abort it.
        if getattr(self, "_b", None) is not None and \
                _threading.get_ident() == self._thread:
            self.abort()


# ---------------------------------------------------------------------------
# Snapshots.

class Snapshot:
    """A consistent read view (``lb_snapshot``): reads through it see the
    database as of one committed batch. Used by one thread at a time (a
    lock serialises its calls). Close it with :meth:`close` or ``with``."""

    def __init__(self, db):
        self._db = db
        self._lock = _threading.RLock()
        out = _ffi.new("lb_snapshot **")
        self._s = None
        handle = db._enter()
        try:
            _check(_lib.lb_snapshot_open(handle, out))
            self._s = out[0]
            self._cursors = set()
            db._snapshots.add(self)
        finally:
            db._leave()

    def _handle(self):
        if self._s is None:
            raise InvalidError("the snapshot is closed")
        return self._s

    def get(self, table, key, default=None):
        """The value of ``key`` in ``table`` as of the snapshot, or
        ``default``."""
        k = _key(key)
        val = _ffi.new("const void **")
        vlen = _ffi.new("size_t *")
        with self._lock:
            s = self._handle()
            rc = _lib.lb_snapshot_get(s, _name(table), k, len(k), val, vlen)
            if rc == _lib.LB_ENOTFOUND:
                return default
            if rc < 0:
                raise _error(rc)
            raw = _ffi.buffer(val[0], vlen[0])[:]
        return self._db._decode(table, raw)

    def scan(self, table, start=None):
        """Iterate over ``(key, value)`` of ``table`` as of the snapshot, in
        key order, from ``start`` (the first key >= it) or the first key.
        Raises NotFoundError when there is no such table."""
        cname = _name(table)
        sk = _key(start) if start is not None else None
        c = _ffi.new("lb_cursor **")
        with self._lock:
            _check(_lib.lb_cursor_open(self._handle(), cname, c))
            cur = c[0]
            self._cursors.add(cur)
        decode_schema = self._db._has_schema(table)
        k = _ffi.new("const void **")
        kl = _ffi.new("size_t *")
        v = _ffi.new("const void **")
        vl = _ffi.new("size_t *")
        try:
            if sk is not None:
                with self._lock:
                    self._handle()
                    _check(_lib.lb_cursor_seek(cur, sk, len(sk)))
            while True:
                with self._lock:
                    if cur not in self._cursors:
                        raise InvalidError("the snapshot was closed")
                    rc = _lib.lb_cursor_next(cur, k, kl, v, vl)
                    if rc == _lib.LB_ENOTFOUND:
                        return
                    if rc < 0:
                        raise _error(rc)
                    key = _ffi.buffer(k[0], kl[0])[:]
                    raw = _ffi.buffer(v[0], vl[0])[:]
                yield _key_out(key), (_unpack(raw) if decode_schema else raw)
        finally:
            with self._lock:
                if cur in self._cursors:
                    self._cursors.discard(cur)
                    _lib.lb_cursor_close(cur)

    def _close_for_db(self):
        with self._lock:
            if self._s is None:
                return
            for cur in self._cursors:
                _lib.lb_cursor_close(cur)
            self._cursors.clear()
            _lib.lb_snapshot_close(self._s)
            self._s = None

    def close(self):
        """Close the snapshot (and the cursors of its scans); closing twice
        does nothing."""
        with self._lock:
            if self._s is None:
                return
            self._close_for_db()
        self._db._snapshots.discard(self)

    @property
    def closed(self):
        return self._s is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_s", None) is not None:
            self.close()
