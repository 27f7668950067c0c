# want: 3:14 sesame listens on the interfaces that carry a default route
# severity: warning
interfaces = []
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
