# want: 4:15 port 70000 is out of range
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = ["[2001:db8:5::10]:70000/tcp"]
}
