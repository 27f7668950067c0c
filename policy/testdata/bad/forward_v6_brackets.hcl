# want: 4:15 goes in brackets
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = ["2001:db8:5::10:443/tcp"]
}
