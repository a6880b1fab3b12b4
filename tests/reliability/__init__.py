"""Crash/resume reliability harness (issue 4): see README.md in this folder."""
