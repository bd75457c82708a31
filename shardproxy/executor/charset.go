package executor

// ClientCharset implements engine.SessionCharset for the fast lane's plans.
func (lc *laneCursor) ClientCharset() string { return lc.s.ClientCharset() }
