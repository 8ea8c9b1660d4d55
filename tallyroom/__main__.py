from tallyroom.cli import app

app(prog_name="tallyroom")
