"""Integration tests of the LDAP source against a real OpenLDAP slapd."""
