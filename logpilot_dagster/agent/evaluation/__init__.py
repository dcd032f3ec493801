"""Offline evaluation of the query agent over golden question sets."""
