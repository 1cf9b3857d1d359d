"""What runs the domain's decisions against a source and the directory: the cycle, applying a plan,
recovery after a crash, onboarding and freezing a login."""
