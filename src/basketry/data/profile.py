def profile(b): pass
def fingerprint(b): pass
