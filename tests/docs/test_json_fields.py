"""docs/json.md's tables are well formed, and the check that keeps them in step with the output fails
when it should. The command tests (tests/upload, tests/carzip, tests/importers) run that check on the
real ``--json`` lines of the commands, optional fields (``import``, ``next_upload_prefix``) included."""

from __future__ import annotations

import pytest

from tests.infra.json_docs import assert_documented, documented


@pytest.mark.parametrize("section", ["upload", "car-zip", "import"])
def test_every_table_is_parsed_with_its_always_fields(section: str) -> None:
    fields = documented(section)
    assert {"run_id", "key", "status"} <= {name for name, f in fields.items() if f.always}


def test_an_undocumented_or_missing_field_fails_the_check() -> None:
    record = {name: None for name in documented("import")} | {"run_id": "0", "key": "0", "target": "droa",
                                                              "model_name": "m", "status": "ready"}  # fmt: skip
    assert_documented("import", record)
    with pytest.raises(AssertionError, match=r"does not document: \['extra'\]"):
        assert_documented("import", record | {"extra": 1})
    with pytest.raises(AssertionError, match=r"lacks fields .* \['model_name'\]"):
        assert_documented("import", {k: v for k, v in record.items() if k != "model_name"})
    with pytest.raises(AssertionError, match=r"import\.status is null"):
        assert_documented("import", record | {"status": None})
    with pytest.raises(AssertionError, match=r"import\.model_id = True"):
        assert_documented("import", record | {"model_id": True})
