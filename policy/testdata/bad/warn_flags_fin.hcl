# want: 6:15 passes the probes of FIN and Xmas scans, so those scans count as knocks on door "ssh", not only SYN scans: each full one opens it with odds 1 in 4.3e9
# severity: warning
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  open = ["22/tcp"]
  tcp_flags = "fin,!ack"
}
