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


class StrictInputSchema(OpenApiSerializerExtension):
    """The schema says what StrictInputSerializer does: no properties beyond the declared ones."""

    target_class = StrictInputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema


class ErrorSerializer(serializers.Serializer):
    """The one error shape (documentation only; see orders_project.api.errors)."""

    code = serializers.CharField(help_text="Machine-readable error code, e.g. validation_error.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(
        help_text="Per-field messages for validation errors (field -> list of messages); empty otherwise.",
    )
