"""The Compose Specification's JSON schema (compose-spec.json, the current one from the
compose-spec repository), checked before Switchyard's own rules. Each error names the offending
key: where the schema offers alternatives (oneOf/anyOf, e.g. `build` as a string or a mapping),
jsonschema's own error says only that the whole value matched none, so the most relevant error
underneath is reported instead."""
import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from deployments.compose.project import ComposeError

MAX_ERRORS = 10


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(Path(__file__).with_name("compose-spec.json").read_text())
    # The draft the schema declares ("https://json-schema.org/draft-07/schema", which jsonschema's
    # registry knows only as http://...#, so it is named here rather than looked up).
    return jsonschema.Draft7Validator(schema)


def check_schema(document: dict) -> None:
    errors = [best_match([error]) for error in _validator().iter_errors(document)]
    errors.sort(key=lambda error: [str(part) for part in error.absolute_path])
    if errors:
        raise ComposeError([describe(error) for error in errors[:MAX_ERRORS]])


def describe(error: ValidationError) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unexpected = _unexpected_keys(error.instance, error.schema)
        if unexpected:
            where = ".".join(path + [unexpected[0]])
            if not error.schema.get("properties") and error.schema.get("patternProperties"):  # a map of names
                allowed = " or ".join(error.schema["patternProperties"])
                return f"{where}: not a name the specification allows here ({allowed}) (Compose specification)"
            return f"{where}: additional property not allowed (Compose specification)"
    return f"{'.'.join(path) or 'the file'}: {error.message} (Compose specification)"


def _unexpected_keys(instance: dict, schema: dict) -> list[str]:
    known = schema.get("properties", {})
    patterns = [re.compile(pattern) for pattern in schema.get("patternProperties", {})]
    return sorted(str(key) for key in instance
                  if key not in known and not any(pattern.search(str(key)) for pattern in patterns))
