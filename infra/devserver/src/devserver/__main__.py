from devserver.cli import run

run()
