"""Shared Streamlit pieces: the only part of crm that imports streamlit."""
