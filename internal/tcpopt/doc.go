// Package tcpopt sets the TCP options the connections between nodes rely on to notice a
// peer that is gone: TCP_USER_TIMEOUT, so that data left unacknowledged aborts the
// connection within a bound instead of after TCP's retransmission backoff (minutes), and
// a non-blocking peek that tells whether a connection the other end never writes on has
// ended. Both are Linux's; elsewhere they do nothing.
package tcpopt
