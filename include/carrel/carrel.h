// carrel/carrel.h — everything an embedder needs.
#pragma once

#include "carrel/alarms.h"
#include "carrel/clock.h"
#include "carrel/connections.h"
#include "carrel/context.h"
#include "carrel/engine.h"
#include "carrel/export.h"
#include "carrel/handler.h"
#include "carrel/id.h"
#include "carrel/kv.h"
#include "carrel/options.h"
#include "carrel/sql.h"
#include "carrel/status.h"
#include "carrel/version.h"
