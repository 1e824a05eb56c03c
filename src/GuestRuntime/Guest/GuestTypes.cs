using System.Reflection;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Finds assemblies, types and methods by name inside the sandbox, with errors that say exactly which
/// part was missing: the assembly, the type in that assembly, or the method on that type.
/// </summary>
internal static class GuestTypes
{
    private const BindingFlags AllMembers = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;
    private static readonly Dictionary<string, Type> s_typesByQualifiedName = new(StringComparer.Ordinal);
    private static readonly List<(byte[] Utf8Name, Type Type)> s_typesByUtf8Name = [];
    private static readonly Dictionary<(Type, string, int), List<(Type?[]? ArgumentTypes, MethodPlan Plan)>> s_methods = new();
    private static readonly List<(Type Type, byte[] Utf8Name, int ParameterCount, Type?[]? ArgumentTypes, MethodPlan Plan)> s_methodsByUtf8Name = [];

    /// <summary>Loads an assembly by (full or simple) name.</summary>
    public static Assembly LoadAssembly(string assemblyName)
    {
        try
        {
            return Assembly.Load(new AssemblyName(assemblyName));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or ArgumentException)
        {
            throw new ResolutionException(
                $"Assembly '{assemblyName}' could not be loaded in the sandbox: no assembly loader of the host provides it " +
                "(see IsolatedRuntimeHost.WithBinDirectoryAssemblyLoader and WithAssemblyLoader).");
        }
    }

    /// <summary>Finds a type by full name (<c>Namespace.Outer+Inner</c>) in an assembly.</summary>
    public static Type FindType(string assemblyName, string typeName)
    {
        var assembly = LoadAssembly(assemblyName);
        return assembly.GetType(typeName, throwOnError: false)
            ?? throw new ResolutionException($"Type '{typeName}' was not found in assembly '{assembly.GetName().Name}'.");
    }

    /// <summary>Finds a type by assembly-qualified name (how the host names argument types).</summary>
    public static Type FindQualifiedType(string qualifiedName)
    {
        if (!s_typesByQualifiedName.TryGetValue(qualifiedName, out var type))
        {
            try
            {
                type = Type.GetType(qualifiedName, AssemblyResolver, TypeResolver, throwOnError: true)!;
            }
            catch (Exception e) when (e is TypeLoadException or ArgumentException or FileLoadException or BadImageFormatException)
            {
                throw new ResolutionException($"Type '{qualifiedName}' was not found in the sandbox: {e.Message}");
            }
            s_typesByQualifiedName[qualifiedName] = type;
        }
        return type;
    }

    /// <summary>
    /// Reads an assembly-qualified type name and finds the type. The names of types already seen are
    /// matched as UTF-8 bytes, without decoding and hashing the (long) name on every call.
    /// </summary>
    public static Type ReadQualifiedType(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.String || !reader.TryReadStringSpan(out var utf8))
        {
            return FindQualifiedType(reader.ReadString() ?? throw new MessagePackSerializationException("Argument type missing."));
        }
        foreach (var (name, known) in s_typesByUtf8Name)
        {
            if (utf8.SequenceEqual(name))
            {
                return known;
            }
        }
        var type = FindQualifiedType(System.Text.Encoding.UTF8.GetString(utf8));
        // A handful of argument types is the norm; a sandbox that sends hundreds uses the dictionary.
        if (s_typesByUtf8Name.Count < 32)
        {
            s_typesByUtf8Name.Add((utf8.ToArray(), type));
        }
        return type;
    }

    private static bool SameParameters(MethodInfo a, MethodInfo b) =>
        a.GetParameters().Select(p => p.ParameterType).SequenceEqual(b.GetParameters().Select(p => p.ParameterType));

    /// <summary>
    /// <see cref="FindMethod(Type, string, int, Type?[])"/> for a name still in its UTF-8 bytes: the methods found before are
    /// matched by those bytes, without decoding the name and hashing a (type, name, count) key on every call, which cost
    /// the interpreter more than the call itself.
    /// </summary>
    public static MethodPlan FindMethod(Type type, ReadOnlySpan<byte> utf8Name, int parameterCount, Type?[]? argumentTypes)
    {
        foreach (var known in s_methodsByUtf8Name)
        {
            if (known.Type == type && known.ParameterCount == parameterCount && utf8Name.SequenceEqual(known.Utf8Name) && SameTypes(known.ArgumentTypes, argumentTypes))
            {
                return known.Plan;
            }
        }
        var plan = FindMethod(type, System.Text.Encoding.UTF8.GetString(utf8Name), parameterCount, argumentTypes);
        // A handful of methods is the norm; a sandbox that calls hundreds by name uses the dictionary for the rest.
        if (s_methodsByUtf8Name.Count < 32)
        {
            s_methodsByUtf8Name.Add((type, utf8Name.ToArray(), parameterCount, argumentTypes?.ToArray(), plan));
        }
        return plan;
    }

    /// <summary>
    /// Finds a method by name and parameter count (-1: any count). When several match, the argument
    /// types pick one (null arguments match any reference type); still several is an ambiguity error.
    /// </summary>
    public static MethodPlan FindMethod(Type type, string name, int parameterCount, Type?[]? argumentTypes)
    {
        var key = (type, name, parameterCount);
        if (s_methods.TryGetValue(key, out var cachedPlans))
        {
            foreach (var (types, plan) in cachedPlans)
            {
                if (SameTypes(types, argumentTypes))
                {
                    return plan;
                }
            }
        }

        var named = new List<MethodInfo>();
        for (var current = type; current is not null; current = current.BaseType)
        {
            // Open generic methods cannot be invoked without type arguments, which the host does not send.
            // A base method with the same parameters as one already found (an override, or one hidden with `new`) is
            // the derived method's to answer for, as in C#.
            var fromDerived = named.Count;
            named.AddRange(current.GetMethods(AllMembers | BindingFlags.DeclaredOnly).Where(m => m.Name == name && !m.ContainsGenericParameters
                && !named.Take(fromDerived).Any(derived => SameParameters(derived, m))));
        }
        if (named.Count == 0)
        {
            throw new ResolutionException($"Method '{name}' was not found on type '{type.FullName}'.");
        }
        var candidates = parameterCount < 0 ? named : named.Where(m => m.GetParameters().Length == parameterCount).ToList();
        if (candidates.Count == 0)
        {
            var counts = string.Join(", ", named.Select(m => m.GetParameters().Length).Distinct().Order());
            throw new ResolutionException(
                $"Method '{name}' on type '{type.FullName}' takes {counts} parameter(s), not {parameterCount}.");
        }
        if (candidates.Count > 1 && argumentTypes is not null)
        {
            candidates = candidates.Where(m => Accepts(m, argumentTypes)).ToList();
            // Prefer exact type matches among the applicable ones.
            var exact = candidates.Where(m => m.GetParameters().Select(p => p.ParameterType).SequenceEqual(argumentTypes.Select(t => t ?? typeof(object)))).ToList();
            if (exact.Count == 1)
            {
                candidates = exact;
            }
        }
        if (candidates.Count != 1)
        {
            throw new ResolutionException(candidates.Count == 0
                ? $"No overload of '{type.FullName}.{name}' accepts arguments ({Signature(argumentTypes)})."
                : $"The call to '{type.FullName}.{name}' is ambiguous between {candidates.Count} overloads; pass arguments whose types pick one.");
        }
        var found = new MethodPlan(candidates[0]);
        if (cachedPlans is null)
        {
            s_methods[key] = cachedPlans = [];
        }
        cachedPlans.Add((argumentTypes?.ToArray(), found));
        return found;
    }

    private static string Signature(Type?[]? argumentTypes) =>
        argumentTypes is null ? "" : string.Join(",", argumentTypes.Select(t => t?.FullName ?? "null"));

    private static bool SameTypes(Type?[]? cached, Type?[]? argumentTypes)
    {
        if (cached is null || argumentTypes is null)
        {
            return cached is null && argumentTypes is null;
        }
        if (cached.Length != argumentTypes.Length)
        {
            return false;
        }
        for (var i = 0; i < cached.Length; i++)
        {
            if (cached[i] != argumentTypes[i])
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Finds the constructor that accepts the given argument types.</summary>
    public static ConstructorInfo FindConstructor(Type type, Type?[] argumentTypes)
    {
        var constructors = type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            .Where(c => c.GetParameters().Length == argumentTypes.Length && Accepts(c, argumentTypes))
            .ToList();
        if (constructors.Count > 1)
        {
            var exact = constructors.Where(c => c.GetParameters().Select(p => p.ParameterType).SequenceEqual(argumentTypes.Select(t => t ?? typeof(object)))).ToList();
            if (exact.Count == 1)
            {
                constructors = exact;
            }
        }
        return constructors.Count switch
        {
            1 => constructors[0],
            0 => throw new ResolutionException(
                $"Type '{type.FullName}' has no constructor taking ({string.Join(", ", argumentTypes.Select(t => t?.Name ?? "null"))})."),
            _ => throw new ResolutionException($"Creating '{type.FullName}' is ambiguous between {constructors.Count} constructors."),
        };
    }

    private static bool Accepts(MethodBase method, Type?[] argumentTypes)
    {
        var parameters = method.GetParameters();
        if (parameters.Length != argumentTypes.Length)
        {
            return false;
        }
        for (var i = 0; i < parameters.Length; i++)
        {
            var parameterType = parameters[i].ParameterType;
            var argumentType = argumentTypes[i];
            var fits = argumentType is null
                ? !parameterType.IsValueType || Nullable.GetUnderlyingType(parameterType) is not null
                : parameterType.IsAssignableFrom(argumentType) || Nullable.GetUnderlyingType(parameterType) == argumentType;
            if (!fits)
            {
                return false;
            }
        }
        return true;
    }

    private static Assembly? AssemblyResolver(AssemblyName name) => LoadAssembly(name.FullName);

    private static Type? TypeResolver(Assembly? assembly, string name, bool ignoreCase) =>
        assembly is null ? Type.GetType(name, throwOnError: false, ignoreCase) : assembly.GetType(name, throwOnError: false, ignoreCase);
}

/// <summary>A method found by name, with what every call needs worked out once (reflection is slow in the interpreter).</summary>
internal sealed class MethodPlan(MethodInfo method)
{
    /// <summary>The method.</summary>
    public MethodInfo Method { get; } = method;

    /// <summary>Its parameters (<see cref="MethodBase.GetParameters"/> copies the array on every call).</summary>
    public ParameterInfo[] Parameters { get; } = method.GetParameters();

    /// <summary>True when the method returns a task-like value the result writer may have to await.</summary>
    public bool ReturnsTaskLike { get; } = ResultWriter.IsTaskLike(method.ReturnType);

    // Reflection serves the first calls; a method called again gets a compiled invoker (emitting one costs more
    // than a few reflective calls, so one-off calls do not pay for it).
    private const int CallsBeforeCompiling = 2;
    private int _calls;
    private Func<object?, object?[], object?>? _compiled;
    private bool _compiledProven;
    private bool[]? _acceptsNull;

    /// <summary>
    /// Calls the method on <paramref name="target"/> (ignored for static methods) with <paramref name="values"/>,
    /// already fitted to the parameter types. Exceptions from the method are thrown as they are.
    /// </summary>
    public object? Invoke(object? target, object?[] values)
    {
        if (_compiled is null && ++_calls == CallsBeforeCompiling + 1)
        {
            _compiled = CompiledInvoker.TryCompile(Method, Parameters);
            _acceptsNull = Array.ConvertAll(Parameters, p => !p.ParameterType.IsValueType || Nullable.GetUnderlyingType(p.ParameterType) is not null);
        }
        if (_compiled is not null && Fits(values))
        {
            if (_compiledProven)
            {
                return _compiled(target, values);
            }
            try
            {
                var result = _compiled(target, values);
                _compiledProven = true;
                return result;
            }
            catch (InvalidProgramException)
            {
                // The runtime refused the emitted code on its first run: reflection from now on (the method never ran).
                _compiled = null;
            }
        }
        // Reflection also converts what the compiled call cannot (an int to an enum parameter, say) and words the
        // errors of arguments that do not fit.
        return Method.Invoke(Method.IsStatic ? null : target, BindingFlags.DoNotWrapExceptions, binder: null, values, culture: null);
    }

    private bool Fits(object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] is { } value ? !Parameters[i].ParameterType.IsInstanceOfType(value) : !_acceptsNull![i])
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>An assembly, type or method named by the host does not exist in the sandbox.</summary>
internal sealed class ResolutionException(string message) : Exception(message);
