"""Pixelmerge's web application (Flask). The app factory arrives with the REST API; for now the
package holds the command line."""
