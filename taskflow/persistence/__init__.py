"""Persistence: models, backends and the connection API (see
``taskflow.persistence.models`` and ``taskflow.persistence.backends``)."""
