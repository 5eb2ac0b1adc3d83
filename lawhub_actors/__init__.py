"""LawHub Actors: a WhatsApp Cloud API gateway on a supervised pykka runtime."""

__version__ = "0.1.0"
