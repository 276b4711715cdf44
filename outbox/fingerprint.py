"""The fingerprint of a dead row's error: its cause, without what differs from row to row.

The relay records `last_error` as "<ErrorClass>: <message>" (outbox/outcome.py). The
fingerprint is the class and the message with ids, hex, addresses and numbers replaced by
placeholders, so "MessageSizeTooLargeError: The message is 1048713 bytes ..." of a thousand
rows is one cause, and staff requeue or discard it once.

It is computed in SQL when read, never stored: dead rows are few (each blocks its key; an
alert fires on one), the reads pass over dead rows only (outbox_status_topic_idx, every
partition), and a better normalisation applies to every row at once, with no backfill.
The group's id is the md5 of the fingerprint, short enough for a URL or a form.
"""

from django.db.models import TextField
from django.db.models.expressions import RawSQL

# Applied in order, case-insensitively, to the message (PostgreSQL's regular expressions:
# \y is a word boundary). Ids first: a UUID's digit groups must not become numbers.
RULES: tuple[tuple[str, str], ...] = (
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>"),
    (r"\[[0-9a-f]*:[0-9a-f:]*\](:\d+)?", "<addr>"),  # [::1]:9092 (a colon inside: not "[10]")
    (r"\y\d{1,3}(\.\d{1,3}){3}(:\d+)?", "<addr>"),  # 10.0.0.7:9092
    (r"\y[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*:\d{2,5}\y", "<addr>"),  # kafka-0.kafka.svc:9092, localhost:9092
    (r"\y0x[0-9a-f]+\y", "<hex>"),
    (r"\y[0-9a-f]{16,}\y", "<hex>"),  # trace and span ids, digests
    (r"\d+(\.\d+)?", "<n>"),
    (r"\s+", " "),
)
# "<ErrorClass>: message": the class is a (dotted) identifier before the first colon.
_CLASS = r"^([A-Za-z_][A-Za-z0-9_.]*):"
_MESSAGE = r"^[A-Za-z_][A-Za-z0-9_.]*:\s*(.*)$"
MAX_LENGTH = 500


def _literal(text: str) -> str:
    # The rules are constants of this module, never input; quoted all the same.
    return "'" + text.replace("'", "''") + "'"


def _normalised(sql: str) -> str:
    for pattern, replacement in RULES:
        sql = f"regexp_replace({sql}, {_literal(pattern)}, {_literal(replacement)}, 'gi')"
    return f"btrim({sql})"


def fingerprint_sql(column: str) -> str:
    """SQL for the fingerprint of the error text in `column` (a qualified column name)."""
    with_class = (
        f"substring({column} from {_literal(_CLASS)}) || ': ' || "
        f"{_normalised(f'substring({column} from {_literal(_MESSAGE)})')}"
    )
    return (
        f"left(CASE WHEN {column} ~ {_literal(_CLASS)} THEN {with_class} ELSE {_normalised(column)} END, {MAX_LENGTH})"
    )


def group_id_sql(column: str) -> str:
    """SQL for the id of the fingerprint's group: md5 of it, 32 hex digits."""
    return f"md5({fingerprint_sql(column)})"


def fingerprint_expression(table: str) -> RawSQL:
    """The fingerprint of `table`.last_error, for the ORM (annotate, values)."""
    return RawSQL(fingerprint_sql(f'"{table}"."last_error"'), [], output_field=TextField())


def group_id_expression(table: str) -> RawSQL:
    return RawSQL(group_id_sql(f'"{table}"."last_error"'), [], output_field=TextField())
