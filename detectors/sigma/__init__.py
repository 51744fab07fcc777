"""Sigma rules as detectors: loaded from folders, files or a SigmaHQ release zip, converted with
pySigma for the documents our shipper writes, and classified by whether they can run here."""
