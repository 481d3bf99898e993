"""Help that reads at 80 columns, applied once to the whole command tree when the application's
group is built (:class:`basketry.cli.errors.FailureFunnel`), so that no declaration repeats it:

- an option's environment variable is named once, at the end of its help text
  (``Env: BASKETRY_MODEL_DIR.``), instead of typer's ``[env var: ...]`` column, which rich cuts
  to ``BASKETRY_MODEL_DI…`` when the help column is narrow;
- help texts are text, not rich markup (``pip install 'basketry[spark]'`` keeps its extra);
- a command's later docstring paragraphs are reflowed to the terminal, except a paragraph
  whose first line ends with a colon (``Examples:``), whose lines are kept as written.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

_DONE = "_basketry_help_tidied"


def envvar_names(param: Any) -> list[str]:
    """The environment variables an option reads, as declared."""
    envvar = getattr(param, "envvar", None)
    if not envvar:
        return []
    return [envvar] if isinstance(envvar, str) else [str(e) for e in envvar]


def reflow(doc: str) -> str:
    """A docstring's paragraphs each on one line, but for those introduced by a colon."""
    import inspect

    paragraphs = [p if p.split("\n", 1)[0].endswith(":") else " ".join(p.split())
                  for p in inspect.cleandoc(doc).split("\n\n")]
    text = "\n\n".join(paragraphs)
    if len(paragraphs) > 1 and paragraphs[1].split("\n", 1)[0].endswith(":"):
        # typer dedents the text after the first paragraph as a docstring (inspect.cleandoc),
        # which would take the examples' indent away when they come first: a blank first line
        # keeps it (and is dropped by the same dedent)
        text = text.replace("\n\n", "\n\n\n", 1)
    return text


def tidy_help(command: Any) -> None:
    """Tidy the help of ``command`` and of every command under it (once)."""
    if getattr(command, _DONE, False):
        return
    setattr(command, _DONE, True)
    if command.help:
        command.help = escape(reflow(command.help))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
        names = envvar_names(param)
        if not names or param.param_type_name != "option" or not param.show_envvar:
            continue
        param.show_envvar = False
        text = param.help or ""
        missing = [n for n in names if n not in text]
        if missing:
            param.help = f"{text.rstrip()} Env: {', '.join(missing)}.".lstrip()
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
