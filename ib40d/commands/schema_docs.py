# SPDX-License-Identifier: GPL-2.0-or-later
"""`make schema-docs`: write ib40.conf(5) and README.md's key table from
ib40d.core.schema."""

import sys

from ib40d.core.schema import man_page, replace_readme_table


def main(argv: list[str]) -> int:
    if argv == ["--man"]:
        from ib40d import __version__

        print(man_page(__version__), end="")
    elif len(argv) == 2 and argv[0] == "--readme":
        with open(argv[1], encoding="utf-8") as f:
            text = replace_readme_table(f.read())
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print("usage: python3 -m ib40d.commands.schema_docs --man | --readme README.md", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

