"""Helpers some programs written for the original import from its test package."""
