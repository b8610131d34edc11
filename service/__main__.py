"""``python -m service`` = the ``paperscope`` command."""

from service.cli import main

main()
