"""Read DRfC env files (``system.env``, ``run.env``) the way DRfC's ``dr-update-env`` reads them.

DRfC (``bin/activate.sh``, function ``dr-update-env``) takes the file's lines that do not start with
``#``, splits all of them into words at spaces, tabs and newlines, cuts each word at ``=`` into field 1
(the name) and field 2 (the value: only the text up to a second ``=``), and runs
``eval "export NAME=VALUE"`` for every word, so shell quoting and ``$VAR`` expansion apply.

What that means, and what this module does about each case:

- Lines whose first character is ``#`` are comments. A ``#`` after leading whitespace is also a
  comment here. Blank lines are ignored.
- One ``KEY=VALUE`` per line. ``KEY`` must be a shell variable name. A leading ``export`` word is
  accepted and ignored (DRfC ends up applying the assignment that follows it).
- The value is evaluated as an assignment in bash:
  - ``'...'`` is literal;
  - ``"..."`` expands ``$`` and honours ``\\$ \\" \\\\ \\```;
  - a backslash outside quotes escapes the next character;
  - ``$NAME``, ``${NAME}``, ``${NAME:-word}`` and ``${NAME-word}`` expand. They look up variables
    assigned earlier in this file, then the earlier files and variables given by the caller, then
    the process environment. Unknown names expand to the empty string, as in bash;
  - a leading ``~`` or ``~/`` becomes ``$HOME``.
- ``ConfigError`` (naming the file, the line and the fix) where DRfC would silently do something
  else or where we would have to run a program:
  - no ``=``, or an invalid name;
  - spaces around ``=``;
  - whitespace inside a value, even quoted, because DRfC splits the line there;
  - a second ``=``, because DRfC drops the text after it;
  - unterminated quotes;
  - ``$(...)`` and backticks;
  - unquoted shell operators ``; & | < >``, and parentheses (an unreplaced ``<PLACEHOLDER>`` from
    DRfC's templates lands here);
  - unquoted brace expansion (``{a,b}``, ``{1..3}``), which bash would turn into several words and DRfC
    would keep only the last of (``{x}`` alone stays literal);
  - other ``${...}`` forms and special parameters (``$1``, ``$$``);
  - ``~user``;
  - Windows (CR) line endings.
- A comment after a value (``DR_X=1 # note``) is accepted: for DRfC it is one more word, and a
  ``#`` word is a shell comment. DRfC still applies the later words of that comment one by one,
  though. A word containing ``=`` would be assigned, and a bare ``DR_...`` word would become
  ``DR_...=DR_...``. A comment with such a word is therefore an error; put it on its own line. The
  same check applies to comment lines indented with whitespace, which DRfC does not recognise as
  comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from drtransfer.errors import ConfigError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[^ \t]+")
_OPERATORS = frozenset(";&|<>()")
_SPECIAL_PARAMETERS = frozenset("0123456789$?#*@!-")

Lookup = Callable[[str], str | None]


@dataclass(frozen=True)
class Assignment:
    """One ``KEY=VALUE`` line: ``raw`` is the value as written, starting at column ``start`` of ``line``."""

    key: str
    value: str
    raw: str
    line: int
    start: int


@dataclass(frozen=True)
class EnvFile:
    """A parsed env file: its text (for exact rewrites) and its assignments in file order."""

    path: Path
    text: str
    assignments: tuple[Assignment, ...]

    def values(self) -> dict[str, str]:
        """Every variable the file sets, the last assignment winning (as in DRfC)."""
        return {a.key: a.value for a in self.assignments}

    def last(self, key: str) -> Assignment | None:
        """The assignment of ``key`` that takes effect, if any."""
        found = [a for a in self.assignments if a.key == key]
        return found[-1] if found else None


def read_text(path: Path) -> str:
    """The file's text, or a ConfigError naming the path."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not an env file; give the path of the file.") from None
    except PermissionError:
        raise ConfigError(f"{path} cannot be read (permission denied); fix its permissions.") from None
    except OSError as error:
        raise ConfigError(f"{path} cannot be read ({error.strerror}); check the path.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8.") from None


def read_env_file(
    path: Path, known: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> EnvFile:
    """Parse ``path``; ``known`` holds the variables set before it (earlier files), ``environ`` the process
    environment that ``$VAR`` falls back to."""
    return parse_env_text(read_text(path), path, known, environ)


def parse_env_text(
    text: str, path: Path, known: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> EnvFile:
    """Parse ``text`` as the content of ``path`` (which is used in messages only)."""
    current: dict[str, str] = {}
    earlier = known or {}
    env = environ or {}

    def lookup(name: str) -> str | None:
        for layer in (current, earlier, env):
            if name in layer:
                return layer[name]
        return None

    assignments: list[Assignment] = []
    for number, line in enumerate(text.split("\n"), start=1):
        found = _parse_line(line, _Where(path, number), lookup)
        if found is not None:
            current[found.key] = found.value
            assignments.append(found)
    return EnvFile(path, text, tuple(assignments))


@dataclass(frozen=True)
class _Where:
    path: Path
    line: int

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path} line {self.line}: {message}.")


def _parse_line(line: str, where: _Where, lookup: Lookup) -> Assignment | None:
    if "\r" in line:
        raise where.error("ends with a Windows line ending (CR); convert the file to Unix line endings (dos2unix)")
    if line.startswith("#"):
        return None
    words = list(_WORD.finditer(line))
    if not words:
        return None
    if words[0].group().startswith("#"):
        _check_comment(words[1:], where)
        return None
    if words[0].group() == "export" and len(words) > 1:
        words = words[1:]
    first, rest = words[0], words[1:]
    word = first.group()
    if rest and not rest[0].group().startswith("#"):
        key = word.split("=", 1)[0]
        if ("=" not in word and rest[0].group().startswith("=")) or word.endswith("="):
            raise where.error(f"{key!r} has spaces around '='; write {key}=VALUE without spaces")
        raise where.error(
            f"the value of {key!r} contains whitespace, which DRfC splits into separate words (quotes do not "
            f"help); remove the whitespace"
        )
    _check_comment(rest[1:], where)
    if "=" not in word:
        raise where.error(f"{word!r} has no '='; write KEY=VALUE")
    key, raw = word.split("=", 1)
    if not NAME.fullmatch(key):
        raise where.error(
            f"{key!r} is not a valid variable name; use letters, digits and '_', not starting with a digit"
        )
    if "=" in raw:
        raise where.error(
            f"the value of {key!r} contains a second '=', and DRfC keeps only the text before it; remove it"
        )
    value = _Expander(raw, key, where, lookup).expand()
    return Assignment(key, value, raw, where.line, first.start() + len(key) + 1)


def _check_comment(words: list[re.Match[str]], where: _Where) -> None:
    """DRfC assigns every later word of a comment; refuse the words that would change a setting."""
    for match in words:
        word = match.group()
        if word.startswith("#"):
            continue
        if "=" in word or (NAME.fullmatch(word) and word.startswith("DR_")):
            raise where.error(
                f"DRfC would still apply {word!r} from this comment, because it reads the file word by word; "
                f"put the comment on its own line starting with '#'"
            )


class _Expander:
    """Evaluate one assignment value as bash does (quotes, escapes, ``$VAR``), or explain why not."""

    def __init__(self, raw: str, key: str, where: _Where, lookup: Lookup) -> None:
        self.raw = raw
        self.key = key
        self.where = where
        self.lookup = lookup
        self.pos = 0

    def fail(self, message: str) -> ConfigError:
        return self.where.error(f"the value of {self.key!r} {message}")

    def expand(self) -> str:
        out: list[str] = []
        if self.raw.startswith("~"):
            out.append(self._tilde())
        while self.pos < len(self.raw):
            char = self.raw[self.pos]
            if char == "'":
                end = self.raw.find("'", self.pos + 1)
                if end < 0:
                    raise self.fail("has an unterminated ' quote; close it")
                out.append(self.raw[self.pos + 1 : end])
                self.pos = end + 1
            elif char == '"':
                out.append(self._double_quoted())
            elif char == "\\":
                if self.pos + 1 >= len(self.raw):
                    raise self.fail("ends with a backslash; remove it")
                out.append(self.raw[self.pos + 1])
                self.pos += 2
            elif char == "$":
                out.append(self._dollar())
            elif char == "`":
                raise self.fail("uses `command substitution`, which deepracer-transfer does not run; write the value")
            elif char == "{" and self._brace_expansion():
                raise self.fail(
                    "uses brace expansion ({a,b} or {1..3}), which the shell turns into several words; quote it"
                )
            elif char in _OPERATORS:
                raise self.fail(
                    f"contains an unquoted {char!r}, which the shell treats as an operator; quote it or replace "
                    f"the placeholder with a real value"
                )
            else:
                out.append(char)
                self.pos += 1
        return "".join(out)

    def _brace_expansion(self) -> bool:
        """Whether the unquoted ``{`` at ``self.pos`` starts a brace expansion (``{a,b}``, ``{1..3}``)."""
        close = self.raw.find("}", self.pos)
        body = self.raw[self.pos + 1 : close] if close > 0 else ""
        return "," in body or ".." in body

    def _tilde(self) -> str:
        end = self.raw.find("/")
        end = len(self.raw) if end < 0 else end
        if end > 1:
            raise self.fail(
                f"starts with {self.raw[:end]!r} (another user's home), which is not supported; write a path"
            )
        self.pos = 1
        home = self.lookup("HOME")
        return "~" if home is None else home

    def _double_quoted(self) -> str:
        out: list[str] = []
        self.pos += 1
        while self.pos < len(self.raw):
            char = self.raw[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\" and self.pos + 1 < len(self.raw) and self.raw[self.pos + 1] in '$`"\\':
                out.append(self.raw[self.pos + 1])
                self.pos += 2
            elif char == "$":
                out.append(self._dollar())
            elif char == "`":
                raise self.fail("uses `command substitution`, which deepracer-transfer does not run; write the value")
            else:
                out.append(char)
                self.pos += 1
        raise self.fail('has an unterminated " quote; close it')

    def _dollar(self) -> str:
        """Expand the ``$`` at ``self.pos`` and move past it."""
        nxt = self.raw[self.pos + 1 : self.pos + 2]
        if nxt == "{":
            return self._braced()
        if nxt == "(":
            raise self.fail("uses $(...), which deepracer-transfer does not run; write the value itself")
        if nxt in ("'", '"'):
            raise self.fail(f"uses ${nxt}...{nxt} quoting, which is not supported; use plain quotes")
        if nxt and nxt in _SPECIAL_PARAMETERS:
            raise self.fail(f"uses the special parameter ${nxt}, which is not supported; write the value")
        name = NAME.match(self.raw, self.pos + 1)
        if name is None:  # a lone '$' stays literal, as in bash
            self.pos += 1
            return "$"
        self.pos = name.end()
        return self.lookup(name.group()) or ""

    def _braced(self) -> str:
        start = self.pos + 2
        depth, end = 1, start
        while end < len(self.raw) and depth:
            if self.raw[end] == "{":
                depth += 1
            elif self.raw[end] == "}":
                depth -= 1
            end += 1
        if depth:
            raise self.fail("has an unterminated ${...}; close it with '}'")
        body = self.raw[start : end - 1]
        self.pos = end
        name = NAME.match(body)
        if name is None:
            raise self.fail(f"uses ${{{body}}}, which is not supported; write $NAME or ${{NAME}}")
        value = self.lookup(name.group())
        operator = body[name.end() :]
        if not operator:
            return value or ""
        for op, use_default in ((":-", not value), ("-", value is None)):
            if operator.startswith(op):
                if not use_default:
                    return value or ""
                word = operator[len(op) :]
                return _Expander(word, self.key, self.where, self.lookup).expand()
        raise self.fail(f"uses ${{{body}}}, which is not supported; use $NAME, ${{NAME}} or ${{NAME:-default}}")
