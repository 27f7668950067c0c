# want: 4:14 consecutive ports in ascending order: a sweep in ascending port order
# severity: warning
door "ssh" {
  sequence = ["7000/udp", "7001/udp", "7002/udp"]
  open = ["22/tcp"]
}
