"""CRM automation for Google Workspace teams: domain, ports, services and adapters."""
