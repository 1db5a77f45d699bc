"""Background tasks of the fixture shop: every pattern here is one bandit reports."""

import hashlib
import pickle
import subprocess

import requests
import yaml


def unpack(archive):
    # OS command injection: a shell builds the command from input
    return subprocess.call("tar xzf " + archive, shell=True)


def load_config(text):
    return yaml.load(text)  # arbitrary object construction


def restore(blob):
    return pickle.loads(blob)


def fingerprint(data):
    return hashlib.md5(data).hexdigest()


def fetch(url):
    return requests.get(url, verify=False, timeout=10)
