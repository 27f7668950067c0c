# want: 4:27 unknown protocol "sctp"
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = ["8080/tcp", "192.0.2.10:22/sctp"]
}
