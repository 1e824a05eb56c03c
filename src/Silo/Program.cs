Console.WriteLine("IsolateGrains silo: Orleans hosting is not built yet (see the open cluster issue).");
