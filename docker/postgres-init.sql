-- One database per node: the nodes never share one.
CREATE DATABASE bank;
CREATE DATABASE platform;
