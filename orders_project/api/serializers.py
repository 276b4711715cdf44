"""Serializer pieces every app's API shares."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not declare.

    A typo such as `shiping_address` must be an error, not silently dropped.
    The unknown name is echoed in the error with lone surrogates (valid in a JSON
    escape, not encodable as UTF-8) written as `\\udXXX`, so the response can be sent.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({_printable(name): ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# What DRF's CharField refuses in any input string: NUL (and lone surrogates, which a JSON
# Schema pattern cannot name: validators such as jsonschema-rs see only Unicode scalar values).
# Unless blank is allowed, it also refuses a string of only whitespace, which it strips to "":
# leading whitespace, then a first character that is not (unambiguous, so no backtracking).
# str.strip's whitespace is a regex `\s` plus U+001C-U+001F and U+0085.
_SPACE = "\\s\\x1c-\\x1f\\x85"
_TEXT = "^[^\\x00]*$"
_NOT_BLANK_TEXT = f"^[{_SPACE}]*[^{_SPACE}\\x00][^\\x00]*$"


def _decimal_pattern(field: serializers.DecimalField) -> str:
    """Plain non-negative decimals below the field's maximum (in whole powers of ten)."""
    places = field.decimal_places or 0
    whole = (field.max_digits or 30) - places
    if field.max_value is not None:
        whole = min(whole, len(str(int(field.max_value))) - 1)
    return f"^[0-9]{{1,{whole}}}(?:\\.[0-9]{{1,{places}}})?$" if places else f"^[0-9]{{1,{whole}}}$"


class StrictInputSchema(OpenApiSerializerExtension):
    """The schema says what StrictInputSerializer and its fields refuse, so that a request the
    schema calls valid is not a 400: no properties beyond the declared ones, no NUL, surrogate
    or blank strings, list lengths, and decimals as the plain numbers they must be."""

    target_class = StrictInputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        for name, field in self.target.fields.items():
            prop = schema["properties"].get(name)
            if prop is None or field.read_only:
                continue
            if type(field) is serializers.CharField:
                prop["pattern"] = _TEXT if field.allow_blank else _NOT_BLANK_TEXT
            elif isinstance(field, serializers.DecimalField) and (field.min_value or 0) >= 0:
                prop["pattern"] = _decimal_pattern(field)
            elif isinstance(field, serializers.ListSerializer):
                for attribute, key in (("min_length", "minItems"), ("max_length", "maxItems")):
                    bound = getattr(field, attribute, None)  # ListSerializer's, missing from the stubs
                    if bound is not None:
                        prop[key] = bound
        return schema


class ErrorSerializer(serializers.Serializer):
    """The one error shape (documentation only; see orders_project.api.errors)."""

    code = serializers.CharField(help_text="Machine-readable error code, e.g. validation_error.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(
        help_text="Per-field messages for validation errors (field -> list of messages); empty otherwise.",
    )
