-- The example's stand-in for an internal customer directory: who calls from which number.
-- examples/screen_pop/customers.py creates the SQLite file from this script on first run.
-- Numbers are E.164 (as Enreach sends CallerNumber); a real directory would be kept in sync
-- from the CRM. The names, companies and numbers are made up.

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    phone TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    company TEXT,
    tier TEXT,
    note TEXT
);

INSERT INTO customers (phone, name, company, tier, note) VALUES
    ('+358401234567', 'Maija Mäkinen', 'Mäkinen Rakennus Oy', 'Gold',
     'Open ticket 4711: invoice for March charged twice.'),
    ('+358407654321', 'Juha Korhonen', 'Korhonen & Sons <Ltd>', 'Silver',
     'Prefers English. Contract renewal due in June.'),
    ('+358505550101', 'Liisa Nieminen', NULL, NULL,
     'Private customer; asked for a call back about delivery times.'),
    ('+46701234567', 'Erik Lindqvist', 'Lindqvist Logistik AB', 'Gold',
     'Key account: put through to the account manager if she is free.'),
    ('+358442223344', 'Aleksi Heikkinen', 'Heikkinen Kahvila', 'Bronze', NULL);
