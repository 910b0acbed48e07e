"""The command line: click commands, option groups, and user errors turned into exit codes.

Imports every other layer; nothing imports it.
"""
