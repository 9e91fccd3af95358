import socket, time
s4=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s4.bind(('127.0.0.1',40001))
s6=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); s6.bind(('::1',40002))
r4=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); r4.bind(('127.0.0.1',40999))
r6=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); r6.bind(('::1',40999))
for i in range(3):
    s4.sendto(b'flowdex-v4-%d' % i, ('127.0.0.1',40999)); time.sleep(0.01)
for i in range(2):
    s6.sendto(b'flowdex-v6-%d' % i, ('::1',40999)); time.sleep(0.01)
# a TCP SYN to a closed port for a non-UDP packet
t=socket.socket(); 
try: t.connect(('127.0.0.1',40998))
except Exception: pass
