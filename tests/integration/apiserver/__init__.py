"""A faithful fake Kubernetes API server for nodereboot's integration tests.

kube-apiserver.py (one folder up) is the entry point; the modules here are its parts.
"""
