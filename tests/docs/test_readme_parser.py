"""How the README runner reads fenced blocks: commands across lines, declared statuses, skip markers."""
import pytest

from tests.docs.readme import blocks, commands

MARKDOWN = """# Title

<!-- readme: skip: it trains for an hour -->

```sh
make run
```

```sh
# a comment, then a command over four lines: a backslash, then a quote left open
curl -X POST localhost:8000/v1/jobs \\
     -d '{"a": 1,
          "b": "#2"}'
# -> 401 {"error": {"status": 401}}
# -> nothing: a second answer line is only a comment
ID=$(echo 1)   # a trailing comment
```

```python
print("not run")
```
"""


def test_blocks_carry_their_commands_statuses_and_skip_reasons():
    found = blocks(MARKDOWN)
    assert [(b.line, b.language, b.skip) for b in found] == [(5, "sh", "it trains for an hour"), (9, "sh", None),
                                                              (19, "python", None)]
    first, second = found[1].commands
    assert (first.line, first.status) == (11, "401") and first.text.count("\n") == 2 and first.text.endswith("}'")
    assert (second.line, second.status, second.text) == (16, "2xx", "ID=$(echo 1)   # a trailing comment")
    assert found[2].commands == []


def test_a_command_whose_quote_never_closes_is_an_error_naming_its_line():
    with pytest.raises(ValueError, match="line 7: a command never ends"):
        commands(["true", "curl -d '{", "}"], first_line=6)


def test_the_readme_stays_a_manual_of_at_most_250_lines():
    from tests.utils import ROOT

    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move research to docs/experiments/"
