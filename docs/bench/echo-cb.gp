if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 900,560
} else {
    set terminal png size 900,560
}
set output 'docs/bench/echo-cb.png'
set title 'echo, client-bound: throughput (msgs/s, median, bars min-max)'
set xlabel 'connections (64-byte messages)'
set ylabel 'messages/s'
set logscale x
set grid
set key top left
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'docs/bench/echo-cb.dat' index 0 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-select', \
     'docs/bench/echo-cb.dat' index 1 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-poll', \
     'docs/bench/echo-cb.dat' index 2 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-epoll', \
     'docs/bench/echo-cb.dat' index 3 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-uring', \
     'docs/bench/echo-cb.dat' index 4 using 1:2:3:4 with yerrorlines lw 2 title 'raw-epoll', \
     'docs/bench/echo-cb.dat' index 5 using 1:2:3:4 with yerrorlines lw 2 title 'raw-uring', \
     'docs/bench/echo-cb.dat' index 6 using 1:2:3:4 with yerrorlines lw 2 title 'libuv', \
     'docs/bench/echo-cb.dat' index 7 using 1:2:3:4 with yerrorlines lw 2 title 'libevent', \
     'docs/bench/echo-cb.dat' index 8 using 1:2:3:4 with yerrorlines lw 2 title 'libev'
