package fleetsim

import "syscall"

// RaiseNoFile raises this process's RLIMIT_NOFILE to its hard limit (the
// servers and the proxy, started from it, inherit it): M members need M
// connections here, as many in the proxy (twice) and in the servers.
func RaiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}
