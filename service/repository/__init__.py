"""The model repository: the typed card, the folders on disk, and the models being served."""
from service.repository.card import Card, CardError
from service.repository.registry import Repository, UnknownModel
from service.repository.sessions import Network, Threads, session_options
from service.repository.kinds import Model, WrongKind
from service.repository.store import load, next_version, publish, scan, stage

__all__ = ["Card", "CardError", "Model", "WrongKind", "Network", "Threads", "Repository", "UnknownModel", "load", "next_version", "publish", "scan",
           "session_options", "stage"]
